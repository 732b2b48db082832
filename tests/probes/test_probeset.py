"""Unit tests of probe-set loading and validation (no model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from audit.errors import AuditInputError
from audit.probes.probeset import bundled_probeset_paths, load_probeset_file, load_probesets, parse_probeset

CONCEPT = {"name": "demo", "description": "d", "kind": "concept", "concept": "c",
           "positive": ["p one", "p two"], "negative": ["n one", "n two"]}
PAIRED = {"name": "pairs", "description": "d", "kind": "paired", "groups": ["a", "b"],
          "items": [{"a": "a one", "b": "b one"}, {"a": "a two", "b": "b two", "marker": "noun"}]}


def write(tmp_path: Path, document, name: str = "set.yaml") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document), encoding="utf-8")
    return path


def error_of(tmp_path: Path, document) -> str:
    with pytest.raises(AuditInputError) as info:
        load_probeset_file(write(tmp_path, document))
    message = str(info.value)
    assert "set.yaml" in message and "\n" not in message
    return message


def test_bundled_sets_meet_the_sizes_the_product_promises():
    sets = {p.name: p for p in load_probesets(bundled_probeset_paths())}
    assert set(sets) == {"toxicity", "clinical", "multilingual", "gender-occupations"}
    for name in ("toxicity", "clinical"):
        assert len(sets[name].positive) >= 150 and len(sets[name].negative) >= 150
        assert sets[name].source and "neuron-audit" in sets[name].source
    assert sets["multilingual"].groups == ("en", "fr", "de", "es", "zh", "ru", "ar", "hi") and len(sets["multilingual"].items) >= 120
    gender = sets["gender-occupations"]
    assert gender.groups == ("female", "male") and len(gender.items) >= 120
    assert set(gender.markers) == {"pronoun", "noun", "name"}
    for item in gender.items:  # counterfactual: same length, differing in a few gendered words only
        female, male = item["female"].split(), item["male"].split()
        assert len(female) == len(male) and 1 <= sum(f != m for f, m in zip(female, male)) <= 3


def test_concept_set_texts_labels_and_hash(tmp_path):
    (probeset,) = load_probeset_file(write(tmp_path, CONCEPT))
    assert probeset.texts == ["p one", "p two", "n one", "n two"]
    assert probeset.labels.tolist() == [True, True, False, False]
    reordered = yaml.safe_dump(dict(reversed(list(CONCEPT.items()))), sort_keys=False)
    (same,) = load_probeset_file(write(tmp_path, reordered, "other.yaml"))
    assert same.sha256 == probeset.sha256 and same.file_sha256 != probeset.file_sha256


def test_paired_set_orders_texts_by_group(tmp_path):
    (probeset,) = load_probeset_file(write(tmp_path, PAIRED))
    assert probeset.texts == ["a one", "a two", "b one", "b two"]
    assert probeset.markers == (None, "noun")


def test_several_documents_in_one_file(tmp_path):
    path = write(tmp_path, yaml.safe_dump_all([CONCEPT, PAIRED]))
    assert [p.name for p in load_probeset_file(path)] == ["demo", "pairs"]


@pytest.mark.parametrize("change, field", [
    ({"colour": "red"}, "colour: unknown field"),
    ({"kind": "mystery"}, "kind: must be one of"),
    ({"name": "Bad Name"}, "name: must match"),
    ({"name": 7}, "name: expected a non-empty string"),
    ({"positive": []}, "positive: needs at least 2"),
    ({"positive": "one text"}, "positive: expected a list"),
    ({"negative": ["fine", 3]}, "negative[1]: expected a non-empty string"),
    ({"negative": ["fine", "  "]}, "negative[1]: expected a non-empty string"),
    ({"negative": ["p one", "other"]}, "negative[0]: duplicates positive[0]"),
    ({"tags": "safety"}, "tags: expected a list"),
    ({"positive": [__import__("datetime").date(2024, 1, 1), "b"]}, "positive[0]: expected a non-empty string"),
])
def test_concept_validation_names_the_field(tmp_path, change, field):
    assert field in error_of(tmp_path, {**CONCEPT, **change})


@pytest.mark.parametrize("missing", ["name", "description", "concept", "positive", "negative"])
def test_concept_missing_fields(tmp_path, missing):
    document = {k: v for k, v in CONCEPT.items() if k != missing}
    assert f"{missing}: missing required field" in error_of(tmp_path, document)


def test_missing_kind(tmp_path):
    assert "kind: missing required field" in error_of(tmp_path, {k: v for k, v in CONCEPT.items() if k != "kind"})


@pytest.mark.parametrize("change, field", [
    ({"groups": ["a"]}, "groups: expected a list of at least 2"),
    ({"groups": ["a", "a"]}, "groups: group names must be unique"),
    ({"groups": ["a", "marker"]}, "groups[1]: expected a name"),
    ({"groups": ["a", "rest"]}, "groups[1]: expected a name"),
    ({"items": [{"a": "x", "b": "y", 1: "z"}, {"a": "z", "b": "w"}]}, "items[0].1: not a group"),
    ({"items": [{"a": "x", "b": "y"}]}, "items: needs at least 2"),
    ({"items": [{"a": "x", "b": "y"}, {"a": "z"}]}, "items[1].b: missing the text for group 'b'"),
    ({"items": [{"a": "x", "b": "y"}, {"a": "z", "b": "w", "c": "v"}]}, "items[1].c: not a group"),
    ({"items": [{"a": "x", "b": "y"}, {"a": "z", "b": 5}]}, "items[1].b: expected a non-empty string"),
    ({"items": [{"a": "x", "b": "y"}, "just text"]}, "items[1]: expected a mapping"),
    ({"items": [{"a": "x", "b": "y", "target": {"a": "t"}}, {"a": "z", "b": "w"}]}, "items[0].target"),
    ({"concept": "c"}, "concept: unknown field for a paired probe set"),
])
def test_paired_validation_names_the_field(tmp_path, change, field):
    assert field in error_of(tmp_path, {**PAIRED, **change})


def test_yaml_problems_are_input_errors(tmp_path):
    assert "invalid YAML at line" in error_of(tmp_path, "name: [unclosed\n")
    assert "duplicate key 'name'" in error_of(tmp_path, "name: a\nname: b\n")
    assert "must be a mapping" in error_of(tmp_path, "- just\n- a list\n")
    assert "holds no probe set" in error_of(tmp_path, "# nothing\n")
    with pytest.raises(AuditInputError, match="no such probe-set file"):
        load_probeset_file(tmp_path / "absent.yaml")


def test_duplicate_names_across_files(tmp_path):
    first, second = write(tmp_path, CONCEPT, "one.yaml"), write(tmp_path, CONCEPT, "two.yaml")
    with pytest.raises(AuditInputError, match=r"two.yaml: name: duplicate probe-set name 'demo'.*one.yaml"):
        load_probesets([first, second])


def test_target_may_be_shared_or_per_group():
    items = [{"a": "x", "b": "y", "target": "t"}, {"a": "z", "b": "w", "target": {"a": "ta", "b": "tb"}}]
    probeset = parse_probeset({**PAIRED, "items": items})
    assert probeset.targets == ({"a": "t", "b": "t"}, {"a": "ta", "b": "tb"})


def test_items_may_carry_an_id_and_metadata_and_keep_older_hashes():
    plain = parse_probeset(PAIRED)
    assert plain.ids == () and plain.item_id(1) == "item 1"
    tagged = {**PAIRED, "items": [{"a": "a one", "b": "b one", "id": "src.csv:2", "meta": {"row": 2, "ok": True,
                                                                                             "words": ["x", "y"]}},
                                  {"a": "a two", "b": "b two", "id": "src.csv:3"}]}
    probeset = parse_probeset(tagged)
    assert probeset.ids == ("src.csv:2", "src.csv:3") and probeset.item_id(0) == "src.csv:2"
    assert probeset.meta == ({"row": 2, "ok": True, "words": ["x", "y"]}, None)
    assert probeset.sha256 != plain.sha256 and probeset.texts == plain.texts


@pytest.mark.parametrize("items, field", [
    ([{"a": "x", "b": "y", "id": "same"}, {"a": "z", "b": "w", "id": "same"}],
     "items[1].id: duplicates the id of items[0]"),
    ([{"a": "x", "b": "y", "id": 7}, {"a": "z", "b": "w"}], "items[0].id: expected a non-empty string"),
    ([{"a": "x", "b": "y", "meta": ["row"]}, {"a": "z", "b": "w"}], "items[0].meta: expected a mapping"),
    ([{"a": "x", "b": "y", "meta": {"row": {"deep": 1}}}, {"a": "z", "b": "w"}],
     "items[0].meta.row: expected a string"),
    ([{"a": "x", "b": "y", "meta": {"bad key": 1}}, {"a": "z", "b": "w"}], "items[0].meta: keys must match"),
])
def test_item_id_and_meta_validation_names_the_field(tmp_path, items, field):
    assert field in error_of(tmp_path, {**PAIRED, "items": items})
