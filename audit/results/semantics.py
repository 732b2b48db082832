"""Semantic validation of results.json and comparison.json, after the JSON Schema: the invariants the report,
``search`` and policy checks rely on that a schema cannot say (or that the published schema leaves open).

The schema allows null for every float (NaN and infinities are written as null), empty lists, and free-form
objects inside explanations; it cannot say that a histogram has one more edge than counts, that a probe-set
name in a comparison's diff names a set both audits hold, or that a token span lies inside its text. Those
are checked here, in one place, and every problem is one :class:`AuditInputError` line naming the file and the
JSON path, e.g. ``comparison.json: histogram.best: 3 counts for 41 edges (expected 40)``.

Nulls that a real run can write (a statistic that came out NaN) stay valid and the report shows them as "—";
nulls where a number is structural (histogram edges, per-token activations, graph activations) are refused.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..errors import AuditInputError
from .schema import json_path

Path = tuple[Any, ...]


class _Checker:
    """Walks one document; ``fail`` raises the one-line error for a JSON path."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, path: Path, problem: str) -> None:
        raise AuditInputError(f"{self.where}: {json_path(path) or '(top level)'}: {problem}")

    def number(self, value: Any, path: Path) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"expected a number, got {_kind(value)}")
        return float(value)

    def string(self, value: Any, path: Path, *, empty: bool = True) -> str:
        if not isinstance(value, str) or (not empty and not value):
            self.fail(path, f"expected a {'' if empty else 'non-empty '}string, got {_kind(value)}")
        return value

    def mapping(self, value: Any, path: Path, keys: Mapping[str, str] = {}) -> Mapping[str, Any]:
        """``value`` is an object holding ``keys`` with their kinds: num, num?, int, str, list."""
        if not isinstance(value, Mapping):
            self.fail(path, f"expected an object, got {_kind(value)}")
        for key, kind in keys.items():
            if key not in value:
                self.fail(path + (key,), "missing")
            item = value[key]
            if kind == "num":
                self.number(item, path + (key,))
            elif kind == "num?" and item is not None:
                self.number(item, path + (key,))
            elif kind == "int" and (isinstance(item, bool) or not isinstance(item, int)):
                self.fail(path + (key,), f"expected an integer, got {_kind(item)}")
            elif kind == "bool" and not isinstance(item, bool):
                self.fail(path + (key,), f"expected true or false, got {_kind(item)}")
            elif kind == "str":
                self.string(item, path + (key,))
            elif kind == "list" and not isinstance(item, list):
                self.fail(path + (key,), f"expected a list, got {_kind(item)}")
        return value

    def histogram(self, edges: Any, series: Mapping[str, Any], path: Path) -> None:
        """Bins: at least two increasing, non-null edges and one count per bin in every series."""
        if not isinstance(edges, list) or len(edges) < 2:
            self.fail(path + ("edges",), f"expected at least 2 bin edges, got {_count(edges)}")
        values = [self.number(edge, path + ("edges", i)) for i, edge in enumerate(edges)]
        if any(b < a for a, b in zip(values, values[1:])):
            self.fail(path + ("edges",), "bin edges must not decrease")
        for name, counts in series.items():
            if not isinstance(counts, list) or len(counts) != len(edges) - 1:
                self.fail(path + (name,), f"{_count(counts)} counts for {len(edges)} edges (expected {len(edges) - 1})")
            for i, count in enumerate(counts):
                if self.number(count, path + (name, i)) < 0:
                    self.fail(path + (name, i), f"a count must not be negative, got {count}")

    def tokens(self, exemplar: Any, path: Path) -> None:
        """An exemplar's text, its activation and one span (inside the text) per token activation."""
        self.mapping(exemplar, path, {"text": "str", "activation": "num", "token_activations": "list",
                                      "token_spans": "list"})
        spans, values = exemplar["token_spans"], exemplar["token_activations"]
        if len(spans) != len(values):
            self.fail(path + ("token_spans",), f"{len(spans)} spans for {len(values)} token activations")
        for i, value in enumerate(values):
            self.number(value, path + ("token_activations", i))
        size = len(exemplar["text"])
        for i, span in enumerate(spans):
            if not (isinstance(span, list) and len(span) == 2 and all(isinstance(s, int) for s in span)
                    and 0 <= span[0] <= span[1] <= size):
                self.fail(path + ("token_spans", i), f"expected [start, end] within the text's {size} characters, "
                                                     f"got {_short(span)}")

    def pairs(self, rows: Any, path: Path) -> None:
        """``[token, score]`` pairs (vocabulary promoted / suppressed)."""
        for i, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != 2:
                self.fail(path + (i,), f"expected a [token, score] pair, got {_short(row)}")


def check_semantics(data: Mapping[str, Any], *, where: str) -> None:
    """Check a schema-valid results.json or comparison.json (told apart by ``kind``) for what reports,
    ``search`` and policies rely on; raise one :class:`AuditInputError` line naming the JSON path."""
    checker = _Checker(where)
    if data.get("kind") == "comparison":
        _comparison(checker, data)
    else:
        _results(checker, data, ())


def _results(c: _Checker, data: Mapping[str, Any], root: Path) -> None:
    _shapes(c, data, root, data["model"]["n_layers"])
    settings = data["run"]["settings"]
    for key in ("null_sets", "top_k", "max_length", "batch_size"):
        if key in settings and (isinstance(settings[key], bool) or not isinstance(settings[key], int)):
            c.fail(root + ("run", "settings", key), f"expected an integer, got {_kind(settings[key])}")
    classes = data.get("neuron_classes")
    if isinstance(classes, Mapping) and "rules" in classes:
        c.mapping(classes["rules"], root + ("neuron_classes", "rules"),
                  {"kurtosis": "num?", "partition_z": "num?", "entropy_norm_z": "num?", "entropy_vocab_z": "num?"})
    names: dict[str, int] = {}
    for i, section in enumerate(data["probesets"]):
        path = root + ("probesets", i)
        if section["name"] in names:
            c.fail(path + ("name",), f"{section['name']!r} repeats probesets[{names[section['name']]}]")
        names[section["name"]] = i
        entries = [("neurons", j, n) for j, n in enumerate(section.get("neurons") or [])]
        disparity = section.get("disparity")
        if isinstance(disparity, Mapping):
            entries += [(("disparity", "neurons"), j, n) for j, n in enumerate(disparity.get("neurons") or [])]
            _output(c, disparity.get("output"), path + ("disparity", "output"))
        for where, j, entry in entries:
            here = path + (where if isinstance(where, tuple) else (where,)) + (j,)
            _neuron(c, entry, here)
        summary = section.get("summary")
        if isinstance(summary, Mapping) and isinstance(summary.get("strong_selective"), Mapping):
            c.mapping(summary["strong_selective"], path + ("summary", "strong_selective"),
                      {"0.7": "int", "0.8": "int", "0.9": "int"})
        if isinstance(summary, Mapping) and isinstance(summary.get("auroc_histogram"), Mapping):
            histogram = summary["auroc_histogram"]
            c.histogram(histogram.get("edges"), {"counts": histogram.get("counts")}, path + ("summary",
                                                                                               "auroc_histogram"))


def _shapes(c: _Checker, value: Any, path: Path, n_layers: int) -> None:
    """Everywhere in a results document: a confidence interval is [low, high] and a per-layer list has one
    value per layer of the model."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            here = path + (key,)
            if isinstance(key, str) and key.endswith("ci95") and isinstance(item, list) and len(item) != 2:
                c.fail(here, f"expected [low, high], got {_short(item)}")
            if isinstance(key, str) and key.startswith("per_layer"):
                rows = item.items() if isinstance(item, Mapping) else [((), item)]
                for name, row in rows:
                    where = here + ((name,) if name != () else ())
                    if isinstance(row, list) and len(row) != n_layers:
                        c.fail(where, f"{len(row)} values for the model's {n_layers} layers")
            _shapes(c, item, here, n_layers)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, (Mapping, list)):
                _shapes(c, item, path + (i,), n_layers)


def _neuron(c: _Checker, entry: Mapping[str, Any], path: Path) -> None:
    for i, exemplar in enumerate(entry.get("exemplars") or []):
        c.tokens(exemplar, path + ("exemplars", i))
    poly = entry.get("polysemanticity")
    if isinstance(poly, Mapping):
        if poly.get("reference_contexts"):  # shown against the threshold
            c.mapping(poly, path + ("polysemanticity",), {"threshold": "num"})
        for i, exemplar in enumerate(poly.get("reference_contexts") or []):
            c.tokens(exemplar, path + ("polysemanticity", "reference_contexts", i))
    histogram = entry.get("histogram")
    if isinstance(histogram, Mapping):
        sides = histogram.get("sides") or []
        if len(sides) < 2:
            c.fail(path + ("histogram", "sides"), f"expected at least 2 sides, got {len(sides)}")
        c.histogram(histogram.get("edges"), {side: histogram.get(side) for side in sides}, path + ("histogram",))
    vocabulary = entry.get("vocabulary")
    if isinstance(vocabulary, Mapping):
        for key in ("promoted", "suppressed"):
            c.pairs(vocabulary.get(key) or [], path + ("vocabulary", key))
    if isinstance(entry.get("explanation"), Mapping):
        _explanation(c, entry["explanation"], path + ("explanation",))


def _explanation(c: _Checker, x: Mapping[str, Any], path: Path) -> None:
    for i, token in enumerate(x.get("top_tokens") or []):
        c.mapping(token, path + ("top_tokens", i), {"token": "str", "score": "num"})
    for i, pattern in enumerate(x.get("graph") or []):
        here = path + ("graph", i)
        c.mapping(pattern, here, {"tokens": "list", "activation": "num"})
        if not pattern["tokens"]:
            c.fail(here + ("tokens",), "a graph pattern needs at least its activating token, got an empty list")
        for j, token in enumerate(pattern["tokens"]):
            c.string(token, here + ("tokens", j))
    if x.get("coherence"):
        c.mapping(x["coherence"], path + ("coherence",), {"value": "num?", "null_mean": "num?", "null_p95": "num?"})
    summary = c.mapping(x.get("substitution_summary"), path + ("substitution_summary",), {"n": "int"})
    if summary["n"]:
        c.mapping(summary, path + ("substitution_summary",), {"firing": "int", "gains": "int", "losses": "int"})
    for i, row in enumerate(x.get("substitutions") or []):
        c.mapping(row, path + ("substitutions", i), {"token": "str", "substitute": "str", "activation": "num?"})
    fidelity = x.get("fidelity")
    if isinstance(fidelity, Mapping) and "graph" in fidelity:
        c.mapping(x, path, {"fidelity_texts": "int"})
        c.mapping(fidelity["graph"], path + ("fidelity", "graph"),
                  {"n_firing": "int", "f1": "num?", "precision": "num?", "recall": "num?"})
        for key in ("token_lookup", "ngram"):
            c.mapping(fidelity.get(key), path + ("fidelity", key), {"f1": "num?"})
    elif fidelity is not None and "fidelity" in x:
        c.mapping(fidelity, path + ("fidelity",))


def _output(c: _Checker, output: Any, path: Path) -> None:
    if not isinstance(output, Mapping):
        return
    table = output.get("table")
    if not isinstance(table, Mapping):
        return
    if isinstance(table.get("per_group"), Mapping) and not table["per_group"]:
        c.fail(path + ("table", "per_group"), "expected at least one group")
    for i, pair in enumerate(table.get("pairs") or []):
        here = path + ("table", "pairs", i)
        c.mapping(pair, here, {"group": "str", "versus": "str", "ci95": "list"})
        # differences (causal LMs) say whether their CI excludes zero; encoders' cosines have no such flag
        c.mapping(pair, here, {"difference": "num?", "excludes_zero": "bool"} if "per_group" in table
                  else {"cosine": "num?"})


def _comparison(c: _Checker, data: Mapping[str, Any]) -> None:
    for side in ("layers_a", "layers_b"):
        if not data[side]:
            c.fail((side,), "expected at least one layer (every comparison correlates at least one layer pair)")
        diagonal = {("mean_diagonal_r" in layer, "same_index_share" in layer) for layer in data[side]}
        if len(diagonal) > 1 or diagonal - {(True, True), (False, False)}:
            c.fail((side,), "mean_diagonal_r and same_index_share come together, in every layer or in none")
        for i, layer in enumerate(data[side]):
            if layer["n_neurons"] <= 0:
                c.fail((side, i, "n_neurons"), f"expected a positive count, got {layer['n_neurons']}")
    correlation = data["correlation"]
    for i, pair in enumerate(correlation["layer_pairs"]):
        if len(pair) != 2:
            c.fail(("correlation", "layer_pairs", i), f"expected [layer of A, layer of B], got {_short(pair)}")
    for key in ("max_length_used", "truncated_texts"):
        if key in correlation and len(correlation[key]) != 2:
            c.fail(("correlation", key), f"expected [A, B], got {_short(correlation[key])}")
    histogram = data["histogram"]
    c.histogram(histogram["edges"], {k: histogram[k] for k in ("best", "baseline", "diagonal") if k in histogram},
                ("histogram",))
    audits = data.get("audits")
    sections: dict[str, dict[str, Mapping[str, Any]]] = {}
    if audits is not None:
        for side in ("a", "b"):
            _results(c, audits[side], ("audits", side))
            sections[side] = {s["name"]: s for s in audits[side]["probesets"]}
    elif data["probesets"]:
        c.fail(("probesets",), "probe-set diffs need the two audits, but audits is null")
    seen: set[str] = set()
    for i, diff in enumerate(data["probesets"]):
        path = ("probesets", i)
        if diff["name"] in seen:
            c.fail(path + ("name",), f"{diff['name']!r} is diffed twice")
        seen.add(diff["name"])
        for side in ("a", "b"):
            section = sections[side].get(diff["name"])
            if section is None:
                c.fail(path + ("name",), f"{diff['name']!r} names no probe set of audits.{side} "
                                         f"({', '.join(sections[side]) or 'none'})")
            if section["kind"] != diff["kind"]:
                c.fail(path + ("kind",), f"{diff['kind']} here, but audits.{side} holds {diff['name']!r} as "
                                         f"{section['kind']}")
        if "output" in diff:
            c.mapping(diff["output"], path + ("output",), {"ci95": "list"})
            if len(diff["output"]["ci95"]) != 2:
                c.fail(path + ("output", "ci95"), f"expected [low, high], got {_short(diff['output']['ci95'])}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__)


def _count(value: Any) -> str:
    return str(len(value)) if isinstance(value, Sequence) and not isinstance(value, str) else _kind(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
