"""Search a results.json: which reported neurons activate on, or depend on, a given token."""

from __future__ import annotations

from typing import Any, Iterator

WILDCARD = "*"


def _clean(token: str) -> str:
    return token.replace("Ġ", " ").replace("▁", " ").removeprefix("##").strip().lower()


def reported(result: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each reported neuron entry with its probe set's name."""
    for section in result.get("probesets", []):
        yield from ((section["name"], n) for n in section.get("neurons", []))
        yield from ((section["name"], n) for n in section.get("disparity", {}).get("neurons", []))


def search(result: dict[str, Any], token: str) -> list[dict[str, Any]]:
    """Neurons whose explanation names ``token``: as a top token or graph activating token ("activates on"),
    or as an important context token of a firing graph pattern ("depends on"). Strongest first."""
    wanted, found, seen = _clean(token), [], set()
    for probeset, entry in reported(result):
        explanation = entry.get("explanation")
        if not explanation or (probeset, entry["name"]) in seen:
            continue
        seen.add((probeset, entry["name"]))
        score = max((t["score"] for t in explanation["top_tokens"] if _clean(t["token"]) == wanted), default=None)
        patterns = [p for p in explanation.get("graph", []) if p["activation"] >= 0.5]
        on = [p["activation"] for p in patterns if _clean(p["tokens"][0]) == wanted]
        depends = [p for p in patterns if any(_clean(t) == wanted for t in p["tokens"][1:] if t != WILDCARD)]
        if score is not None or on:
            found.append({"probeset": probeset, "neuron": entry["name"], "relation": "activates on",
                          "score": max([score or 0.0, *on]), "description": explanation["description"]})
        if depends:
            found.append({"probeset": probeset, "neuron": entry["name"], "relation": "depends on",
                          "score": max(p["activation"] for p in depends),
                          "description": explanation["description"]})
    return sorted(found, key=lambda row: (-row["score"], row["neuron"], row["relation"]))
