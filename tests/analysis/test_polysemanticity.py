"""Polysemanticity: the verdict rules (unit) and planted single- vs two-concept neurons (integration)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from audit.analysis.polysemanticity import (
    INSUFFICIENT,
    MONOSEMANTIC,
    POLYSEMANTIC,
    firing_line_verdict,
    reference_firing,
    verdict,
    vocabulary_hint,
)
from audit.config import RunConfig
from audit.probes.probeset import load_probesets
from tests import tiny
from tests.conftest import PLANTED_NEURON, POLY_NEURON, audited


def test_reference_firing_uses_the_one_firing_line():
    firing = reference_firing(np.r_[np.full(6, 5.0), np.full(4, 2.9), np.zeros(90)],
                              concept_max=np.array([4.0, 5.0, 6.0]))
    assert firing["threshold"] == 3.0  # half the strongest concept activation, the graphs' line
    assert firing["unrelated_share"] == 0.6 and firing["reference_rate"] == 0.06


def _line(covered: bool, word: str = "violin") -> dict:
    return {"covered": covered, "word": word, "window": f"the {word} plays"}


@pytest.mark.parametrize("above, coherent, function_peaks, expected, phrase", [
    ([_line(True)] * 6, True, False, MONOSEMANTIC, "covers 6 of them"),
    ([_line(True)] * 6 + [_line(False)] * 12, True, False, POLYSEMANTIC, "12 of 200"),
    ([_line(True)] * 6 + [_line(False)] * 2, True, False, INSUFFICIENT, "covers 6 of them"),  # 25 % uncovered
    ([_line(True)] * 6, False, False, INSUFFICIENT, "no clear shared meaning"),
    ([_line(True)] * 6, True, True, INSUFFICIENT, "function words"),
    ([], None, False, INSUFFICIENT, "too few content words"),
])
def test_firing_line_verdict_agrees_with_the_card(above, coherent, function_peaks, expected, phrase):
    label, reasons = firing_line_verdict({"music": 0.5}, above, 200, coherent=coherent, function_peaks=function_peaks)
    assert label == expected and any(phrase in r for r in reasons), reasons


def test_firing_line_verdict_second_concept_elsewhere_is_polysemantic():
    label, reasons = firing_line_verdict({"music": 0.9}, [], 200, coherent=True, function_peaks=False)
    assert label == POLYSEMANTIC and "music" in reasons[0]


@pytest.mark.parametrize("others, share, rate, expected", [
    ({"music": 0.92}, 0.0, 0.0, POLYSEMANTIC),
    ({"music": 0.55}, 0.7, 0.2, POLYSEMANTIC),
    ({"music": 0.55}, 0.1, 0.01, MONOSEMANTIC),
    ({"music": 0.55}, 0.3, 0.01, INSUFFICIENT),
    ({"music": 0.10}, 0.0, 0.0, MONOSEMANTIC),  # strongly *negative* elsewhere is not "selective for it"
])
def test_verdict_rules(others, share, rate, expected):
    label, reasons = verdict(others, {"unrelated_share": share, "reference_rate": rate})
    assert label == expected and reasons


def test_negative_direction_neurons_flip_the_other_auroc():
    label, reasons = verdict({"music": 0.1}, None, direction="negative")
    assert label == POLYSEMANTIC and "music" in reasons[0]


def test_without_reference_evidence_is_insufficient():
    assert verdict({}, None)[0] == INSUFFICIENT
    assert verdict({}, None, unjudged_reason="group markers")[1][0].startswith("group markers")


def test_vocabulary_hint():
    assert vocabulary_hint(3.0, 1.0) is None
    assert vocabulary_hint(25.0, 2.0) == "prediction neuron" and vocabulary_hint(25.0, -2.0) == "suppression neuron"


def test_planted_two_concept_neuron_is_polysemantic(planted_model, concept_yaml, tmp_path):
    music = {"name": "music", "description": "d", "kind": "concept", "concept": "instruments",
             "positive": tiny.sentences(40, seed=11, insert=tiny.SECOND), "negative": tiny.sentences(40, seed=12)}
    (tmp_path / "music.yaml").write_text(yaml.safe_dump(music))
    reference = tmp_path / "reference.txt"
    reference.write_text("\n".join(tiny.sentences(60, seed=13) + tiny.sentences(20, seed=14, insert=tiny.SECOND)))
    sets = load_probesets([concept_yaml, tmp_path / "music.yaml"])
    config = RunConfig(top_k=10, progress=False, bootstrap_resamples=200, ablation=False, reference=str(reference))
    result = audited(planted_model, sets, config)
    by_name = {(n["layer"], n["neuron"]): n for n in result["probesets"][0]["neurons"]}
    single, poly = by_name[(0, PLANTED_NEURON)], by_name[(0, POLY_NEURON)]
    assert single["polysemanticity"]["verdict"] == MONOSEMANTIC and not single["polysemantic"]
    assert poly["polysemanticity"]["verdict"] == POLYSEMANTIC and poly["polysemantic"]
    assert poly["polysemanticity"]["other_concepts"]["music"] >= 0.8
    assert any("music" in reason for reason in poly["polysemanticity"]["reasons"])
    contexts = poly["polysemanticity"]["reference_contexts"]
    assert all(any(word in c["text"].split() for word in tiny.SECOND) for c in contexts)
    assert 0 <= poly["polysemanticity"]["density"] <= 1
    vocabulary = single["vocabulary"]  # a causal LM: W_out·W_U evidence is attached
    assert len(vocabulary["promoted"]) == 10 and np.isfinite(vocabulary["kurtosis"])
    assert sum(single["histogram"]["positive"]) == 40 and sum(single["histogram"]["negative"]) == 40
