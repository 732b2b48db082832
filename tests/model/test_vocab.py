"""W_out·W_U statistics for every neuron: agree with scipy per neuron, fold the final norm, find planted
prediction and suppression neurons."""

from __future__ import annotations

import pytest
import torch
from scipy import stats

from audit.analysis.neuron_classes import classify
from audit.model.loading import load_model
from audit.model.vocab import unembedding, vocabulary_effects, vocabulary_statistics
from tests import tiny


@pytest.fixture(scope="module")
def model(tmp_path_factory, tokenizer):
    gpt2 = tiny.build_gpt2(tokenizer, seed=4)
    with torch.no_grad():
        gpt2.transformer.ln_f.weight.uniform_(0.5, 2.0)  # a non-trivial final norm scale to fold
        w_u = gpt2.lm_head.weight  # tied to wte: (vocab × d_model)
        token = tokenizer.convert_tokens_to_ids("poison")
        c_proj = gpt2.transformer.h[1].mlp.c_proj.weight  # Conv1D: (neurons × d_model)
        direction = w_u[token] / gpt2.transformer.ln_f.weight
        c_proj[3] = 4.0 * direction / direction.norm()  # writes "poison": a prediction neuron
        c_proj[9] = -4.0 * direction / direction.norm()  # suppresses it
    return load_model(tiny.save(gpt2, tokenizer, tmp_path_factory.mktemp("vocab-gpt2")), device="cpu")


def test_statistics_match_scipy_with_the_final_norm_folded(model):
    found = vocabulary_statistics(model, chunk=50)
    assert found["kurtosis"].shape == (model.n_layers, model.neurons_per_layer)
    w_u = model.module.lm_head.weight.detach().double() * model.module.transformer.ln_f.weight.detach().double()
    for layer, neuron in [(0, 0), (0, 77), (1, 3), (1, 127)]:
        w_out = model.sites.modules[layer].weight[neuron].detach().double()
        logits = (w_u @ w_out).numpy()
        assert found["kurtosis"][layer, neuron] == pytest.approx(stats.kurtosis(logits), rel=1e-3, abs=1e-3)
        assert found["skew"][layer, neuron] == pytest.approx(stats.skew(logits), rel=1e-3, abs=1e-3)
        assert found["variance"][layer, neuron] == pytest.approx(logits.var(), rel=1e-4)
        assert found["norm"][layer, neuron] == pytest.approx(float(w_out.norm()), rel=1e-5)
    effects = vocabulary_effects(model, [(1, 3)])[(1, 3)]
    assert effects["kurtosis"] == pytest.approx(found["kurtosis"][1, 3], rel=1e-3)
    assert effects["promoted"][0][0] == "poison"
    assert torch.equal(unembedding(model), model.module.lm_head.weight * model.module.transformer.ln_f.weight)


def test_planted_prediction_and_suppression_neurons_are_classified(model):
    found = vocabulary_statistics(model)
    labels = classify(found["kurtosis"], found["skew"], found["variance"], found["norm"])
    assert labels[1, 3] == "prediction" and labels[1, 9] == "suppression"
    assert found["kurtosis"][1, 3] > 10 and found["skew"][1, 3] > 0 > found["skew"][1, 9]


def test_encoders_have_no_vocabulary_statistics(tmp_path, tokenizer):
    bert_tok = tiny.build_tokenizer(bert_style=True)
    encoder = load_model(tiny.save(tiny.build_bert(bert_tok), bert_tok, tmp_path / "bert"), device="cpu")
    assert vocabulary_statistics(encoder) is None and vocabulary_effects(encoder, [(0, 1)]) == {}
