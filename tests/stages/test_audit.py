"""Integration: the planted concept neuron must come out on top; runs are deterministic."""

from __future__ import annotations

import pytest

from audit.config import RunConfig
from audit.probes.probeset import load_probesets
from tests.conftest import PLANTED_NEURON, POLY_NEURON, audited

FAST = dict(bootstrap_resamples=200, progress=False, top_k=5)


@pytest.fixture(scope="module")
def result(planted_model, concept_yaml):
    return audited(planted_model, load_probesets([concept_yaml]), RunConfig(**FAST))


def test_planted_neuron_ranks_first(result):
    (section,) = result["probesets"]
    top = section["neurons"][0]
    assert (top["layer"], top["neuron"], top["name"]) == (0, PLANTED_NEURON, f"L0.N{PLANTED_NEURON}")
    assert top["auroc"] == 1.0 and top["direction"] == "positive" and top["q_value"] < 1e-10
    assert top["auroc_ci95"][0] > 0.95
    assert all(e["label"] == "positive" for e in top["exemplars"])
    # the polysemantic plant reads half the concept words: selective, but below the planted neuron
    ranked = [(n["layer"], n["neuron"]) for n in section["neurons"]]
    assert (0, POLY_NEURON) in ranked[1:]


def test_control_and_summary(result):
    (section,) = result["probesets"]
    assert section["control"]["n_significant"] <= 2
    summary = section["summary"]
    assert summary["n_neurons_tested"] == 2 * 128
    assert summary["n_significant"] == summary["n_significant_positive"] + summary["n_significant_negative"]
    assert sum(summary["per_layer_significant_positive"]) == summary["n_significant_positive"]
    assert sum(summary["auroc_histogram"]["counts"]) == 256


def test_results_carry_the_contract(result, planted_model):
    assert result["schema_version"] == "1"
    model = result["model"]
    for key in ("name", "source", "architecture", "kind", "n_layers", "neurons_per_layer", "weights_sha256"):
        assert key in model
    assert model["kind"] == "causal-lm" and model["neurons_per_layer"] == 128 and len(model["weights_sha256"]) == 64
    for key in ("seed", "started_at", "duration_s", "device", "versions"):
        assert key in result["run"]
    assert {"torch", "transformers", "numpy"} <= set(result["run"]["versions"])
    section = result["probesets"][0]
    for key in ("name", "kind", "sha256", "n_texts", "neurons"):
        assert key in section
    for key in ("layer", "neuron", "auroc", "q_value", "effect_size"):
        assert key in section["neurons"][0]
    assert result["caveats"]


def test_mean_pooling_also_finds_the_plant(planted_model, concept_yaml):
    result = audited(planted_model, load_probesets([concept_yaml]), RunConfig(pooling="mean", **FAST))
    top = result["probesets"][0]["neurons"][0]
    assert (top["layer"], top["neuron"]) == (0, PLANTED_NEURON)
    assert result["probesets"][0]["pooling"] == "mean"


@pytest.mark.parametrize("option, value, message", [
    ("top_k", 0, "'top_k' parameter must be an int in [1, 1000]. Got 0 instead."),
    ("pooling", "median", "'pooling' parameter must be one of"),
    ("bootstrap_resamples", 10, "'bootstrap_resamples' parameter must be an int in [100, 100000]"),
])
def test_config_is_validated(option, value, message):
    with pytest.raises(ValueError) as info:
        RunConfig(**{option: value})
    assert message in str(info.value)
