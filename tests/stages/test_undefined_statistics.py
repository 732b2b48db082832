"""Undefined statistics are reported as undefined (null, with the reason), never as a capped number, and a
normal run on a tiny model raises no numpy warnings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import yaml

from audit.analysis.ablation import specificity_comparison
from audit.analysis.disparity import marker_consistency, paired_effect
from audit.config import RunConfig
from audit.errors import AuditWarning
from audit.probes.probeset import load_probesets
from tests import tiny
from tests.conftest import audited


def test_one_item_has_no_paired_effect():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(paired_effect(np.array([[0.5, -1.0]]))).all()
        assert paired_effect(np.array([[0.5], [0.5]]))[0] == 100.0  # two equal differences: perfectly consistent


def test_markers_with_one_item_each_are_undefined_not_perfect():
    differences = np.array([[1.0], [1.2], [0.9], [2.0], [3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = marker_consistency(differences, ["pronoun", "pronoun", "pronoun", "noun", "name"])
    assert result.undefined == ("name", "noun")
    assert np.isnan(result.effects[result.markers.index("noun")]).all()
    assert np.isnan(result.consistency).all()  # one defined kind: nothing to be consistent across
    assert result.robust_effect[0] == pytest.approx(paired_effect(differences)[0])


def test_specificity_without_a_denominator_is_null_with_a_reason():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        undefined = specificity_comparison(np.array([0.3, 0.1, 0.2, 0.1]), np.array([0.0, 0.1, 0.0, 0.2]))
        defined = specificity_comparison(np.array([0.4, 0.1, 0.2, 0.1]), np.array([0.1, 0.1, 0.0, 0.2]))
    assert undefined["effect"] is None and undefined["z"] is None and "no denominator" in undefined["undefined"]
    assert defined["effect"] == pytest.approx(4.0) and defined["null"]["n"] == 2 and defined["null_undefined"] == 1
    assert np.isfinite(defined["z"])


def test_a_tiny_run_with_singleton_markers_prints_no_warnings(planted_model, concept_yaml, tmp_path):
    items = [{"female": f"{s} she", "male": f"{s} he", "marker": "pronoun"}
             for s in tiny.sentences(10, seed=3)]
    items[0]["marker"], items[1]["marker"] = "noun", "name"
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump({"name": "pairs", "description": "d", "kind": "paired",
                                    "groups": ["female", "male"], "items": items}))
    sets = load_probesets([concept_yaml, path])
    config = RunConfig(top_k=3, bootstrap_resamples=200, null_sets=5, ablate_k=2, ablation_texts=8,
                       reference_texts=20, progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = audited(planted_model, sets, config)
    assert [str(w.message) for w in caught] == []
    section = next(s for s in result["probesets"] if s["name"] == "pairs")
    assert section["undefined_markers"] == ["name", "noun"]
    for neuron in section["disparity"]["neurons"] + section["disparity"]["by_contrast"]["female vs male"]:
        assert neuron["marker_effects"]["noun"] is None and neuron["marker_effects"]["name"] is None
        assert neuron["consistency"] is None
    assert any("hold fewer than 2 items" in note for note in result["caveats"])
    concept = next(s for s in result["probesets"] if s["name"] == "planted")
    specificity = concept["ablation"]["metrics"]["specificity"]
    assert specificity["effect"] is None or np.isfinite(specificity["effect"])


def test_identical_texts_across_groups_are_named(tmp_path):
    items = [{"a": "the cat", "b": "the dog"}, {"a": "same text", "b": "same text"}]
    path = tmp_path / "same.yaml"
    path.write_text(yaml.safe_dump({"name": "same", "description": "d", "kind": "paired", "groups": ["a", "b"],
                                    "items": items}))
    with pytest.warns(AuditWarning, match=r"items\[1\]: the same text for two groups \('same text'\)"):
        load_probesets([path])


def test_crows_rows_with_equal_sentences_are_named(tmp_path):
    from audit.probes.crows_pairs import import_crows_pairs

    path = tmp_path / "crows.csv"
    path.write_text("sent_more,sent_less,stereo_antistereo,bias_type\nA b,C d,stereo,race\nE f,E f,stereo,race\n")
    with pytest.warns(AuditWarning, match="rows 3: sent_more equals sent_less"):
        import_crows_pairs(path)
