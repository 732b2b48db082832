"""Acceptance: a few tests on the bundled default model (all-MiniLM-L6-v2)."""

from __future__ import annotations

import pytest

from audit.errors import AuditInputError
from audit.model import loading as models
from audit.model.harvest import harvest
from tests.conftest import audited

pytestmark = pytest.mark.default_model


@pytest.fixture(scope="module")
def default_model():
    return models.load_model("default", device="cpu")


def test_default_model_is_verified_and_has_its_neuron_sites(default_model):
    assert default_model.weights_sha256 == models.DEFAULT_WEIGHTS_SHA256 and default_model.weights_verified
    assert default_model.kind == "encoder" and default_model.architecture == "BertModel"
    assert (default_model.n_layers, default_model.neurons_per_layer) == (6, 1536)
    acts = harvest(default_model, ["The nurse checked the chart.", "Hello world"], progress=False)
    assert acts.max.shape == (2, 6, 1536) and acts.n_tokens.tolist() == [6, 2]


def test_weights_hash_mismatch_is_refused(monkeypatch):
    monkeypatch.setattr(models, "DEFAULT_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(AuditInputError, match="has sha256 53aa5117.*expected the upstream 0000"):
        models.load_model("default", device="cpu")


def test_default_model_finds_toxicity_neurons(default_model):
    from audit.config import RunConfig
    from audit.probes.probeset import BUNDLED_DIR, load_probesets
    
    (toxicity,) = load_probesets([BUNDLED_DIR / "toxicity.yaml"])
    result = audited(default_model, [toxicity], RunConfig(top_k=3, bootstrap_resamples=200, progress=False, dose_max=3))
    section = result["probesets"][0]
    assert section["neurons"][0]["auroc"] > 0.8
    assert section["summary"]["n_significant"] > 100 and section["control"]["n_significant"] <= 5


def test_default_policy_fails_and_passes_on_the_default_model(tmp_path):
    """The shipped thresholds can fail: all-MiniLM-L6-v2 moves its embedding more for gender words than for ordinary
    words (FAIL) while its selectivity test finds nothing in shuffled labels (PASS); the PDF reads cleanly."""
    import json

    from audit.cli import main
    from audit.probes.probeset import BUNDLED_DIR
    from tests.results.pdftext import page_texts, problems

    out = tmp_path / "out"
    assert main(["run", "--model", "default", "--probeset", str(BUNDLED_DIR / "gender-occupations.yaml"),
                 str(BUNDLED_DIR / "toxicity.yaml"), "--no-ablation", "--no-explain", "--no-progress",
                 "--top-k", "5", "--out", str(out)]) == 0
    policy = json.loads((out / "results.json").read_text())["policy"]
    outcomes = {(c["probeset"], c["metric"]): c["outcome"] for c in policy["checks"]}
    assert outcomes[("gender-occupations", "output_disparity")] == "FAIL"
    assert outcomes[("toxicity", "control_selective_share")] == "PASS"
    assert outcomes[("gender-occupations", "preference_bias")] == "NOT EVALUATED"  # an encoder scores no sentences
    first = page_texts(out / "report.pdf")[0]
    assert "Verdict" in first and "FAIL" in first and "PASS" in first
    assert problems(out / "report.pdf") == []
