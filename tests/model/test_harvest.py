"""Harvest on tiny models: TransformerLens oracle, masking, truncation, exemplars."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.model.harvest import harvest
from audit.model.loading import load_model
from tests import tiny
from tests.conftest import PLANTED_NEURON


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory, tokenizer):
    return tiny.save(tiny.build_gpt2(tokenizer, seed=3), tokenizer, tmp_path_factory.mktemp("gpt2"))


def test_matches_transformerlens_hook_post(gpt2_folder):
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_transformers(str(gpt2_folder), device="cpu")
    model = load_model(str(gpt2_folder), device="cpu")
    texts = tiny.sentences(6, seed=5, length=(3, 12))
    acts = harvest(model, texts, batch_size=4, progress=False)
    prefix = model.tokenizer.eos_token_id  # the tiny tokenizer has no BOS: the prefix is its EOS
    assert model.prefix_token == {"id": prefix, "text": "[EOS]", "kind": "eos"}
    for row, text in enumerate(texts):
        ids = torch.tensor([[prefix, *model.tokenizer(text, add_special_tokens=False)["input_ids"]]])
        _, cache = bridge.run_with_cache(ids)
        for layer in range(model.n_layers):  # every text token, read after the prefix; the prefix itself is left out
            post = cache[f"blocks.{layer}.mlp.hook_post"][0, 1:].double().numpy()
            np.testing.assert_allclose(acts.max[row, layer], post.max(0), atol=1e-4)
            np.testing.assert_allclose(acts.mean[row, layer], post.mean(0), atol=1e-4)


def test_python_api_accepts_a_transformerlens_bridge(gpt2_folder):
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_transformers(str(gpt2_folder), device="cpu")
    from_bridge = load_model(bridge, device="cpu")
    from_folder = load_model(str(gpt2_folder), device="cpu")
    texts = tiny.sentences(4, seed=6)
    assert from_bridge.kind == "causal-lm" and from_bridge.n_layers == 2
    np.testing.assert_allclose(harvest(from_bridge, texts, progress=False).max,
                               harvest(from_folder, texts, progress=False).max, atol=1e-5)


def test_padding_and_batching_do_not_change_aggregates(gpt2_folder):
    model = load_model(str(gpt2_folder), device="cpu")
    texts = tiny.sentences(9, seed=7, length=(2, 20))
    alone = np.stack([harvest(model, [t], progress=False).max[0] for t in texts])
    batched = harvest(model, texts, batch_size=4, progress=False)
    np.testing.assert_allclose(batched.max, alone, atol=1e-5)
    assert batched.n_tokens.tolist() == [len(t.split()) for t in texts]


def test_special_tokens_are_excluded(tmp_path):
    tokenizer = tiny.build_tokenizer(bert_style=True)
    folder = tiny.save(tiny.build_bert(tokenizer), tokenizer, tmp_path / "bert")
    model = load_model(str(folder), device="cpu")
    assert model.kind == "encoder" and model.neurons_per_layer == 96
    texts = ["the cat sees a bird", "night"]
    acts = harvest(model, texts, progress=False)
    assert acts.n_tokens.tolist() == [5, 1] and acts.token_count == 6  # [CLS] and [SEP] not counted
    seen = {}
    with torch.no_grad(), model.sites.hooked(lambda layer, x: seen.setdefault(layer, x.clone())):
        model.module(**model.tokenizer(texts[:1], return_tensors="pt"))
    full = seen[0][0].numpy()  # [CLS] the cat sees a bird [SEP]
    np.testing.assert_allclose(acts.max[0, 0], full[1:6].max(0), atol=1e-5)
    np.testing.assert_allclose(acts.mean[0, 0], full[1:6].mean(0), atol=1e-5)
    assert (full.max(0) > full[1:6].max(0) + 1e-3).any(), "special tokens would have changed some maxima"


def test_truncation_is_counted_and_moments_are_consistent(gpt2_folder):
    model = load_model(str(gpt2_folder), device="cpu")
    texts = ["the cat " * 10, "a dog runs"]
    acts = harvest(model, texts, max_length=8, token_moments=True, progress=False)
    assert acts.truncated.tolist() == [True, False] and acts.n_tokens.tolist() == [7, 3]  # the prefix takes one of the 8
    stats = acts.token_stats()
    expected_mean = (acts.mean * acts.n_tokens[:, None, None]).sum(0) / acts.n_tokens.sum()
    np.testing.assert_allclose(stats["mean"], expected_mean, atol=1e-5)
    assert ((stats["density"] >= 0) & (stats["density"] <= 1)).all() and (stats["std"] >= 0).all()


def test_planted_neuron_exemplars_point_at_concept_words(planted_model):
    from audit.model.harvest import exemplars

    texts = tiny.sentences(10, seed=8) + tiny.sentences(10, seed=9, insert=tiny.CONCEPT)
    acts = harvest(planted_model, texts, progress=False)
    found = exemplars(planted_model, texts, acts, 0, PLANTED_NEURON, k=5)
    assert all(e["token"] in tiny.CONCEPT and e["text_index"] >= 10 for e in found)
    assert all(e["text"][e["char_start"]:e["char_end"]] == e["token"] for e in found)
    assert all(max(e["token_activations"]) == pytest.approx(e["activation"], abs=1e-4) for e in found)
    assert found[0]["activation"] > 1.0 > acts.max[:10, 0, PLANTED_NEURON].max()


def test_parameters_are_checked(gpt2_folder):
    model = load_model(str(gpt2_folder), device="cpu")
    with pytest.raises(ValueError, match="'batch_size' parameter must be an int >= 1. Got 0"):
        harvest(model, ["a"], batch_size=0)


def test_aggregates_past_the_memory_budget_are_memory_mapped_and_equal(planted_model):
    texts = [f"the cat {word} sees a dog" for word in ("poison", "venom", "book", "river", "song", "red")]
    in_memory = harvest(planted_model, texts, progress=False)
    spilled = harvest(planted_model, texts, progress=False, memory_budget_mb=0)
    assert isinstance(spilled.max, np.memmap) and not isinstance(in_memory.max, np.memmap)
    np.testing.assert_array_equal(in_memory.max, spilled.max)
    np.testing.assert_array_equal(in_memory.mean, spilled.mean)
    # laid out neuron by neuron, so the analyses' blocks of neurons read contiguous pages, and pooled
    # responses are a view of the file, not a copy
    pooled = spilled.pooled("max")
    assert pooled.strides == (4, 4 * len(texts)) and np.shares_memory(pooled, spilled.max)
    np.testing.assert_array_equal(pooled, in_memory.pooled("max"))


def test_batches_group_texts_by_token_count_not_characters(planted_model):
    """Across scripts characters are a poor stand-in for tokens: a long text of one token must not share a
    batch with a short text of many tokens (each batch is padded to its longest member)."""
    from audit.model.harvest import batch_plan, text_lengths, tokenize

    words = " ".join(tiny.sentences(1, seed=2, length=(6, 6))[0].split())
    texts = [words, "z" * 70, " ".join([words] * 4), "q" * 3]  # 6, 1, 24 and 1 tokens
    assert len(texts[3]) < len(texts[0]) < len(texts[1]) < len(texts[2])
    counts = text_lengths(texts, model=planted_model, max_length=64)
    real = tokenize(planted_model, texts, 64)["attention_mask"].sum(dim=1).numpy()
    assert counts.tolist() == real.tolist() and counts[1] == counts[3] < counts[0] < counts[2]
    by_tokens = {frozenset(rows.tolist()) for rows in batch_plan(texts, 2, model=planted_model, max_length=64)}
    assert by_tokens == {frozenset({1, 3}), frozenset({0, 2})}
    by_characters = {frozenset(rows.tolist()) for rows in batch_plan(texts, 2)}
    assert by_characters == {frozenset({3, 0}), frozenset({1, 2})}  # what sorting by characters pads together
    assert text_lengths(texts, model=planted_model, max_length=3).max() == 3  # cut where the forward cuts
    assert batch_plan([], 2, model=planted_model) == []  # e.g. a language with no bundled reference lines
