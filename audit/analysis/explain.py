"""Method A (Kran, Lo & Barez 2023), done right: a neuron's top tokens, how coherent they are, what
in-context substitution does, and a plain description. Pure functions over numbers and strings.

Differences from the published code, on purpose: coherence excludes self-pairs and is judged against
random word sets from the same backend (not a fixed 0.6 that only fits one vector space); substitutes are
measured in their context; gains and losses both count; nothing is swallowed.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

SHOW_SCORE = 0.3  # top tokens shown at or above this share of the strongest activation (as published)
FIRE_SHARE = 0.5  # a substitute "fires" at this share of the neuron's strongest activation
COHERENCE_NULL_SETS = 200
COHERENT_PERCENTILE = 95.0  # coherent: above this percentile of random word sets of the same size


def token_scores(tokens: Sequence[str], activations: Sequence[float]) -> list[dict[str, Any]]:
    """Distinct tokens (case-folded) with their strongest activation normalised by the overall maximum;
    those at or above :data:`SHOW_SCORE`, strongest first. Empty when nothing fires above zero."""
    best: dict[str, tuple[float, str]] = {}
    for token, value in zip(tokens, activations):
        key = token.lower()
        if key and (key not in best or value > best[key][0]):
            best[key] = (float(value), token)
    top = max((v for v, _ in best.values()), default=0.0)
    if top <= 0:
        return []
    found = [{"token": shown, "activation": value, "score": value / top} for value, shown in best.values()
             if value / top >= SHOW_SCORE]
    return sorted(found, key=lambda row: (-row["score"], row["token"]))


def mean_pairwise_cosine(vectors: np.ndarray) -> float:
    """Mean cosine over distinct pairs of unit vectors (self-pairs excluded)."""
    n = len(vectors)
    if n < 2:
        raise ValueError("coherence needs at least two vectors")
    gram = vectors @ vectors.T
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))


def coherence(vectors: np.ndarray | None, null: Callable[[int], np.ndarray], *,
              n_sets: int = COHERENCE_NULL_SETS, floor: float = 0.0) -> dict[str, Any] | None:
    """Coherence of the top tokens' unit vectors against ``n_sets`` random same-size word sets drawn by
    ``null(n)``: coherent when above their 95th percentile *and* at least ``floor`` (the backend's own
    scale for "related words"; beating random alone also holds for, say, a set of function words).
    None when fewer than two tokens could be embedded."""
    if vectors is None or len(vectors) < 2:
        return None
    value = mean_pairwise_cosine(vectors)
    samples = np.array([mean_pairwise_cosine(null(len(vectors))) for _ in range(n_sets)])
    percentile = float((samples < value).mean() * 100)
    return {"value": value, "n_tokens": int(len(vectors)), "null_mean": float(samples.mean()),
            "null_p95": float(np.percentile(samples, COHERENT_PERCENTILE)), "percentile": percentile,
            "floor": floor, "coherent": bool(value > np.percentile(samples, COHERENT_PERCENTILE) and value >= floor)}


def substitution_summary(rows: Sequence[dict[str, Any]], top_activation: float) -> dict[str, Any]:
    """Counts over in-context substitutions (each row: ``original`` and ``activation``): how many still
    fire, how many gain or lose, and the mean relative change (gains and losses both count)."""
    if not rows or top_activation <= 0:
        return {"n": 0, "firing": 0, "gains": 0, "losses": 0, "mean_relative_change": None}
    changes = [(r["activation"] - r["original"]) / abs(r["original"]) if r["original"] else 0.0 for r in rows]
    return {"n": len(rows), "firing": sum(r["activation"] >= FIRE_SHARE * top_activation for r in rows),
            "gains": sum(r["activation"] > r["original"] for r in rows),
            "losses": sum(r["activation"] < FIRE_SHARE * r["original"] for r in rows),
            "mean_relative_change": float(np.mean(changes))}


def _quoted(rows: Sequence[dict[str, Any]], n: int = 3) -> str:
    return ", ".join(f"'{row['token']}'" for row in rows[:n])


def describe(scores: Sequence[dict[str, Any]], coherent: dict[str, Any] | None,
             substitutions: dict[str, Any], *, function_words: dict[str, Any] | None = None,
             setting: str = "its top") -> str:
    """The template description a card shows, over content words, e.g. "fires on a coherent word group
    (similarity 0.62) such as 'biopsy', 'lumbar', 'stent'; 4 of 5 in-context substitutes also fire", or, when
    its peaks sit on function words, "fires on function words ('the', 'in') inside clinical sentences; content
    words among its top: 'preeclampsia', 'intraocular' (no clear shared meaning, similarity 0.12)".
    ``scores`` rows carry ``function_word``; ``coherent`` is judged over the content words."""
    if not scores:
        return "does not fire above zero on the examined texts"
    content = [row for row in scores if not row.get("function_word")]
    similarity = f"similarity {coherent['value']:.2f}" if coherent is not None else ""
    if function_words and function_words.get("peaks_on_function_words"):
        shown = ", ".join(f"'{w}'" for w in function_words["words"][:3])
        head = f"fires on function words ({shown}) inside {setting} sentences"
        if content:
            head += f"; content words among its top: {_quoted(content)}"
            if coherent is not None:
                head += (f" (a coherent group, {similarity})" if coherent["coherent"]
                         else f" (no clear shared meaning, {similarity})")
        else:
            head += "; no content word reaches its top"
    elif not content:
        head = f"fires on function words ({_quoted(scores)})"
    elif len(content) == 1:
        head = f"fires on {_quoted(content)}"
    elif coherent is None:
        head = f"fires on words such as {_quoted(content)}"
    elif coherent["coherent"]:
        head = f"fires on a coherent word group ({similarity}) such as {_quoted(content)}"
    else:
        head = f"fires on words with no clear shared meaning ({similarity}) such as {_quoted(content)}"
    if substitutions["n"]:
        head += f"; {substitutions['firing']} of {substitutions['n']} in-context substitutes also fire"
    return head
