"""Causal LMs read and score every text after the model's prefix token, as lm-evaluation-harness does."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from audit.model.encoding import encode, scoring_convention
from audit.model.harvest import harvest
from audit.model.loading import load_model
from audit.model.outputs import target_logprobs
from tests import tiny


@pytest.fixture(scope="module")
def model(tmp_path_factory, tokenizer):
    return load_model(str(tiny.save(tiny.build_gpt2(tokenizer, seed=11), tokenizer,
                                    tmp_path_factory.mktemp("causal"))), device="cpu")


def lm_eval_loglik(model, text: str) -> float:
    """lm-evaluation-harness's loglikelihood("", text) by hand: context [prefix], continuation = the text's tokens
    (no special tokens); input (context + continuation)[:-1]; log_softmax; the continuation's log-probs summed."""
    cont = model.tokenizer(text, add_special_tokens=False)["input_ids"]
    prefix = model.tokenizer.bos_token_id if model.tokenizer.bos_token_id is not None else model.tokenizer.eos_token_id
    inp = torch.tensor([[prefix, *cont][:-1]])
    with torch.no_grad():
        logprobs = torch.log_softmax(model.module(input_ids=inp).logits.float(), dim=-1)[0, -len(cont):]
    return float(logprobs.gather(-1, torch.tensor(cont)[:, None]).sum())


def test_sentence_score_is_lm_eval_loglikelihood_by_hand(model):
    texts = tiny.sentences(9, seed=4, length=(1, 12))
    acts = harvest(model, texts, batch_size=4, outputs=True, progress=False)  # batched, right-padded
    expected = np.array([lm_eval_loglik(model, t) for t in texts])
    np.testing.assert_allclose(acts.outputs["sentence_loglik"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(acts.outputs["loglik"] * acts.outputs["n_predicted"], expected, rtol=1e-5, atol=1e-4)
    assert acts.outputs["n_predicted"].tolist() == [len(t.split()) for t in texts]  # every token is scored


def test_the_first_token_is_scored(model):
    """Two one-word texts: with nothing before them they would score 0; after the prefix each scores
    log P(word | prefix), so they differ exactly by the prefix's next-token log-probs."""
    words = ["she", "he"]
    acts = harvest(model, words, outputs=True, progress=False)
    with torch.no_grad():
        first = torch.log_softmax(model.module(input_ids=torch.tensor([[model.tokenizer.eos_token_id]])).logits[0, 0],
                                  dim=-1)
    ids = [model.tokenizer.convert_tokens_to_ids(w) for w in words]
    np.testing.assert_allclose(acts.outputs["sentence_loglik"], first[ids].numpy(), atol=1e-5)
    assert (acts.outputs["sentence_loglik"] < 0).all() and acts.outputs["n_predicted"].tolist() == [1, 1]


def test_prefix_is_prepended_and_never_aggregated(model):
    texts = ["she runs to the park", "the cat"]
    encoded = encode(model, texts, 16, return_offsets_mapping=True)
    prefix = model.tokenizer.eos_token_id
    assert encoded["input_ids"][:, 0].tolist() == [prefix, prefix]
    assert encoded["special_tokens_mask"][:, 0].tolist() == [1, 1] and encoded["offset_mapping"][:, 0].sum() == 0
    seen = []

    def read(layer, x):
        if layer == 0:
            seen.append(x.detach().clone())

    with torch.no_grad(), model.sites.hooked(read):
        model.module(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
    full = seen[0]  # (texts, positions, neurons), the prefix at position 0
    acts = harvest(model, texts, max_length=16, progress=False)
    assert acts.n_tokens.tolist() == [5, 2]
    for row, n in enumerate(acts.n_tokens):
        np.testing.assert_allclose(acts.max[row, 0], full[row, 1:1 + n].max(0).values.numpy(), atol=1e-5)
        np.testing.assert_allclose(acts.mean[row, 0], full[row, 1:1 + n].mean(0).numpy(), atol=1e-5)
    # the check can fail: the prefix position's activations differ from the text's, and would move the max
    with_prefix = full[0, :6].max(0).values.numpy()
    assert not np.allclose(with_prefix, acts.max[0, 0], atol=1e-5)


def test_bos_is_preferred_and_the_tokenizer_framing_is_not_added(tmp_path):
    """A tokenizer that frames texts itself ([CLS] … [SEP]) and has a BOS: the input is [BOS] + the text's
    tokens only (lm-evaluation-harness encodes the continuation without special tokens)."""
    tokenizer = tiny.build_tokenizer(bert_style=True)
    tokenizer.bos_token, tokenizer.eos_token = "[CLS]", "[SEP]"
    model = load_model(str(tiny.save(tiny.build_gpt2(tokenizer, seed=2), tokenizer, tmp_path / "bos")), device="cpu")
    bos = tokenizer.convert_tokens_to_ids("[CLS]")
    assert model.prefix_token == {"id": bos, "text": "[CLS]", "kind": "bos"}
    encoded = encode(model, ["she runs"], 8)
    assert encoded["input_ids"][0].tolist() == [bos, *tokenizer("she runs", add_special_tokens=False)["input_ids"]]
    assert "BOS '[CLS]'" in scoring_convention(model)
    # a text that already starts with the prefix token: that token is the context, not doubled
    again = encode(model, ["[CLS] she runs"], 8)
    assert again["input_ids"][0].tolist() == encoded["input_ids"][0].tolist()


def test_target_logprobs_read_the_prompt_after_the_prefix(model):
    prompt, target = "the cat", "runs to the park"
    ids = [model.tokenizer.eos_token_id, *model.tokenizer(f"{prompt} {target}", add_special_tokens=False)["input_ids"]]
    n_target = len(target.split())
    with torch.no_grad():
        logprobs = torch.log_softmax(model.module(input_ids=torch.tensor([ids[:-1]])).logits[0].float(), dim=-1)
    expected = float(logprobs[-n_target:].gather(-1, torch.tensor(ids[-n_target:])[:, None]).sum())
    assert target_logprobs(model, [prompt], [target])[0] == pytest.approx(expected, abs=1e-5)


def test_encoders_keep_their_own_framing(tmp_path):
    tokenizer = tiny.build_tokenizer(bert_style=True)
    model = load_model(str(tiny.save(tiny.build_bert(tokenizer), tokenizer, tmp_path / "bert")), device="cpu")
    assert model.prefix_token is None and scoring_convention(model) is None and "prefix_token" not in model.summary()
    encoded = encode(model, ["she runs"], 8)
    assert encoded["input_ids"][0].tolist() == tokenizer("she runs")["input_ids"]


def test_harvest_cache_key_carries_the_prefix_convention(tmp_path, tokenizer):
    """Harvests cached before the prefix convention (or with another prefix) are never reused."""
    from audit.model.cache import FORMAT, harvest_key, tokenizer_sha256
    from audit.provenance import sha256_json

    folder = tiny.save(tiny.build_gpt2(tokenizer, seed=5), tokenizer, tmp_path / "m")
    model = load_model(str(folder), device="cpu")
    model.weights_sha256 = "w"
    texts, settings = ["she runs"], {"batch_size": 32, "max_length": 128, "token_moments": False, "outputs": True}
    before = sha256_json({"format": FORMAT, "weights": "w", "site": model.sites.path_template, "device": "cpu",
                          "texts": hashlib.sha256("she runs".encode()).hexdigest(),
                          "tokenizer": tokenizer_sha256(model), **settings})  # the key as it was computed before
    key = harvest_key(model, texts, settings)
    assert key != before
    other = load_model(str(folder), device="cpu")
    other.weights_sha256 = "w"
    other.tokenizer.bos_token = "[CLS]"
    assert other.prefix_token["kind"] == "bos" and harvest_key(other, texts, settings) != key


def test_comparison_reads_the_prefixed_inputs_and_samples_only_text_tokens(model):
    """compare streams both models through the same encoding: the prefix is read but never a sample."""
    from audit.analysis.correlation import CorrelationState, layer_pairs
    from audit.model.correlate import stream_correlation

    texts = tiny.sentences(6, seed=2, length=(2, 8))
    state = CorrelationState(layer_pairs(2, 2, "same"), model.neurons_per_layer, model.neurons_per_layer)
    stream_correlation(model, model, texts, state, align="tokens", stride=1, progress=False)
    assert state.n == sum(len(t.split()) for t in texts)
