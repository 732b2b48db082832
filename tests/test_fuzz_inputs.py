"""Property-based fuzzing (hypothesis) of everything a user hands the tool, run in-process through ``main``.

From real results.json and comparison.json files written by tiny-model runs, hypothesis draws schema-valid
mutations (nulls where the schema allows them, empty lists, renamed references, extreme numbers, dropped
optional keys, truncated lists) and checks that ``render`` (with a policy), ``search`` and the policy checks
end with exit code 0 or 2 and, on 2, exactly one error line — never a traceback. Probe-set YAML and the three
importers' formats get the same property. Examples are bounded and derandomised, so the run is fast and the
same on every machine.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import functools
import io
import json
import tempfile
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from audit.cli import main
from audit.results.schema import comparison_schema, results_schema

FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None, print_blob=True,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported in seconds
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
QUICK = settings(FUZZ, max_examples=60)
EXTREMES = [0, -1, 1, 0.5, -0.0, 1e308, -1e308, 5e-324, 2 ** 53, -(2 ** 31), 1e-12]
NAMES = ["", "absent", "L0.N0", "L99.N99999", "planted", "gender", "x" * 300, "naïve ünïcode", "*", "a\nb"]
TOKENS = ["poison", "hemlock", "the", "*", "", "Ġpoison", "##ing"]


def cli(argv: list[str]) -> tuple[int, str]:
    """``main(argv)`` in-process; asserts the one-line contract and returns (code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    text = err.getvalue()
    assert "Traceback" not in text, text
    assert code in (0, 2), f"exit {code}: {text}"
    errors = [line for line in text.splitlines() if not line.startswith("neuron-audit: warning:")]
    if code == 2:
        assert len(errors) == 1 and errors[0].startswith("neuron-audit: error: "), text
    else:
        assert errors == [], text
    return code, text


# --- real files from tiny-model runs ---------------------------------------------------------------------


def json_paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path into a JSON document (the root excluded)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield prefix + (index,)
            yield from json_paths(item, prefix + (index,))


def _parent(document: Any, path: tuple) -> tuple[Any, Any]:
    for key in path[:-1]:
        document = document[key]
    return document, path[-1]


def mutate(document: Any, path: tuple, operation: str, value: Any) -> bool:
    """Apply one mutation in place; False when it does not apply to what is at ``path``."""
    parent, key = _parent(document, path)
    current = parent[key]
    if operation == "null":
        parent[key] = None
    elif operation == "empty":
        if not isinstance(current, (list, dict)):
            return False
        parent[key] = type(current)()
    elif operation == "extreme":
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            return False
        parent[key] = value if isinstance(current, float) or isinstance(value, int) else int(current)
    elif operation == "rename":
        if not isinstance(current, str):
            return False
        parent[key] = value
    elif operation == "drop":
        if not isinstance(parent, dict):
            return False
        del parent[key]
    elif operation == "truncate":
        if not isinstance(current, list) or len(current) < 2:
            return False
        parent[key] = current[:1]
    elif operation == "duplicate":
        if not isinstance(current, list) or not current:
            return False
        parent[key] = current + current[:1]
    return True


MUTATIONS = st.lists(st.tuples(st.integers(0, 10 ** 9), st.sampled_from(
    ["null", "null", "empty", "extreme", "rename", "drop", "truncate", "duplicate"]),
    st.one_of(st.sampled_from(EXTREMES), st.sampled_from(NAMES))), min_size=1, max_size=4)


def mutated(original: dict, mutations: list, validator: jsonschema.protocols.Validator) -> dict:
    """``original`` after ``mutations``; hypothesis keeps only schema-valid variants."""
    document = copy.deepcopy(original)
    for pick, operation, value in mutations:
        paths = list(json_paths(document))
        if not paths:
            break
        path = paths[pick % len(paths)]
        if path[0] in ("schema_version", "kind"):
            continue  # the file's identity: a change there is a plain schema error, covered by the table
        mutate(document, path, operation, value)
    assume(validator.is_valid(document))
    return document


@functools.lru_cache(maxsize=2)
def validator(name: str) -> jsonschema.protocols.Validator:
    return jsonschema.Draft202012Validator(results_schema() if name == "results" else comparison_schema())


@FUZZ
@given(mutations=MUTATIONS, token=st.sampled_from(TOKENS))
def test_mutated_results_render_search_and_policy_end_in_0_or_2(small_outputs, mutations, token):
    document = mutated(small_outputs["results"], mutations, validator("results"))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "results.json"
        path.write_text(json.dumps(document, allow_nan=False))
        cli(["render", str(path), "--out", f"{scratch}/out", "--no-pdf", "--policy",
             str(small_outputs["root"] / "policy.yaml")])
        cli(["search", str(path), "--token", token])


@FUZZ
@given(mutations=MUTATIONS)
def test_mutated_comparisons_render_and_check_policies_end_in_0_or_2(small_outputs, mutations):
    document = mutated(small_outputs["comparison"], mutations, validator("comparison"))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "comparison.json"
        path.write_text(json.dumps(document, allow_nan=False))
        cli(["render", str(path), "--out", f"{scratch}/out", "--no-pdf", "--policy",
             str(small_outputs["root"] / "compare-policy.yaml")])


# --- probe sets and importers ------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["poison cat", "a dog", "she runs", "he runs", ""]))
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=12)
PROBE_KEYS = ["name", "description", "kind", "concept", "positive", "negative", "groups", "items", "tags", "source"]
GOOD_SET = {"name": "good", "description": "d", "kind": "concept", "concept": "c",
            "positive": ["the poison cat", "a venom dog"], "negative": ["the cat sees", "a bird runs"]}
GOOD_PAIRED = {"name": "pairs", "description": "d", "kind": "paired", "groups": ["a", "b"],
               "items": [{"a": "she runs", "b": "he runs"}, {"a": "her book", "b": "his book"}]}


def _text_bytes(draw, text: str) -> bytes:
    """``text`` as UTF-8, sometimes with a byte-order mark or a stray non-UTF-8 byte on some line."""
    data = text.encode("utf-8")
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff" + data[at:]
    return data


@st.composite
def probe_set_files(draw) -> bytes:
    base = copy.deepcopy(draw(st.sampled_from([GOOD_SET, GOOD_PAIRED])))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(PROBE_KEYS + ["colour"]))
        if draw(st.booleans()) and key in base:
            del base[key]
        else:
            base[key] = draw(JSONISH)
    documents = [base] * draw(st.integers(1, 2))
    text = yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)
    if draw(st.integers(0, 5)) == 0:
        text = text[: draw(st.integers(0, len(text)))]  # a truncated file
    return _text_bytes(draw, text)


@QUICK
@given(data=probe_set_files())
def test_fuzzed_probe_set_yaml_validates_or_is_one_line(data):
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "set.yaml"
        path.write_bytes(data)
        cli(["validate", str(path)])


CROWS_HEADER = ["", "sent_more", "sent_less", "stereo_antistereo", "bias_type"]


@st.composite
def crows_files(draw) -> bytes:
    header = list(CROWS_HEADER)
    if draw(st.integers(0, 4)) == 0:
        header.remove(draw(st.sampled_from(CROWS_HEADER[1:])))
    cell = st.one_of(st.sampled_from(["The man ran.", "The woman ran.", "stereo", "antistereo", "race-color", "",
                                      "1", "\"", "a,b"]), st.text(max_size=10))
    rows = draw(st.lists(st.lists(cell, min_size=0, max_size=len(header) + 1), max_size=5))
    stream = io.StringIO()
    writer = csv.writer(stream)
    writer.writerow(header)
    writer.writerows(rows)
    return _text_bytes(draw, stream.getvalue())


@QUICK
@given(data=crows_files())
def test_fuzzed_crows_pairs_csv_imports_or_is_one_line(data):
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "crows.csv").write_bytes(data)
        cli(["import", "crows-pairs", f"{scratch}/crows.csv", "-o", f"{scratch}/out.yaml"])


STEREO_EXAMPLE = {"id": "abc", "target": "chess player", "bias_type": "profession", "context": "The BLANK won.",
                  "sentences": [{"id": "s1", "sentence": "The smart man won.", "gold_label": "stereotype"},
                                {"id": "s2", "sentence": "The dumb man won.", "gold_label": "anti-stereotype"},
                                {"id": "s3", "sentence": "The fish man won.", "gold_label": "unrelated"}]}


@st.composite
def stereoset_files(draw) -> bytes:
    document = {"version": "1.0", "data": {"intrasentence": [copy.deepcopy(STEREO_EXAMPLE)], "intersentence": []}}
    for _ in range(draw(st.integers(0, 3))):
        paths = list(json_paths(document))
        path = paths[draw(st.integers(0, len(paths) - 1))]
        parent, key = _parent(document, path)
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(JSONISH)
    return _text_bytes(draw, json.dumps(document, allow_nan=True))


@QUICK
@given(data=stereoset_files())
def test_fuzzed_stereoset_json_imports_or_is_one_line(data):
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "dev.json").write_bytes(data)
        cli(["import", "stereoset", f"{scratch}/dev.json", "-o", f"{scratch}/out.yaml"])


WINO_LINE = st.one_of(st.sampled_from(["1 The [nurse] met [her] friend.", "2 The [doctor] saw [him] there.",
                                        "", "x", "3 [he] [she]", "4"]), st.text(max_size=20))


@st.composite
def winobias_folders(draw) -> dict[str, bytes]:
    pro = draw(st.lists(WINO_LINE, min_size=0, max_size=4))
    anti = draw(st.lists(WINO_LINE, min_size=0, max_size=4))
    files = {"pro_stereotyped_type1.txt.dev": _text_bytes(draw, "\n".join(pro)),
             "anti_stereotyped_type1.txt.dev": _text_bytes(draw, "\n".join(anti))}
    if draw(st.booleans()):
        files["female_occupations.txt"] = _text_bytes(draw, "nurse\n" + draw(st.text(max_size=10)))
    if draw(st.integers(0, 5)) == 0:
        del files["anti_stereotyped_type1.txt.dev"]
    return files


@QUICK
@given(files=winobias_folders(), grouping=st.sampled_from(["stereotype", "gender", "both"]))
def test_fuzzed_winobias_folders_import_or_are_one_line(files, grouping):
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "wino"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        cli(["import", "winobias", str(folder), "--grouping", grouping, "-o", f"{scratch}/out.yaml"])
