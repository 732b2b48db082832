"""Neuron sites on tiny random models of each supported family, built offline from configs."""

from __future__ import annotations

import pytest
import torch
import transformers as tf

from audit.model.sites import find_sites

FAMILIES = {
    "gpt2": lambda: tf.GPT2LMHeadModel(tf.GPT2Config(n_layer=2, n_embd=32, n_head=2, n_inner=48, vocab_size=50)),
    "gpt_neox": lambda: tf.GPTNeoXForCausalLM(tf.GPTNeoXConfig(num_hidden_layers=2, hidden_size=32,
                                                               num_attention_heads=2, intermediate_size=48,
                                                               vocab_size=50)),
    "llama": lambda: tf.LlamaForCausalLM(tf.LlamaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                                        num_key_value_heads=2, intermediate_size=48, vocab_size=50)),
    "mistral": lambda: tf.MistralForCausalLM(tf.MistralConfig(num_hidden_layers=2, hidden_size=32,
                                                              num_attention_heads=2, num_key_value_heads=2,
                                                              intermediate_size=48, vocab_size=50)),
    "qwen2": lambda: tf.Qwen2ForCausalLM(tf.Qwen2Config(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                                        num_key_value_heads=2, intermediate_size=48, vocab_size=50)),
    "bert": lambda: tf.BertModel(tf.BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                               intermediate_size=48, vocab_size=50)),
    "roberta": lambda: tf.RobertaModel(tf.RobertaConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2,
                                                        intermediate_size=48, vocab_size=50)),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sites_are_the_mlp_neurons_and_on_the_output_path(family):
    torch.manual_seed(0)
    model = FAMILIES[family]().eval()
    sites = find_sites(model, model.config.model_type)
    assert sites.n_layers == 2 and sites.n_neurons == 48
    ids = torch.randint(3, 50, (2, 5))
    seen = {}

    def record(layer, x):
        seen[layer] = x.clone()

    with torch.no_grad(), sites.hooked(record):
        clean = model(input_ids=ids)[0]
    assert sorted(seen) == [0, 1] and seen[0].shape == (2, 5, 48)
    with torch.no_grad(), sites.hooked(lambda layer, x: torch.zeros_like(x)):
        zeroed = model(input_ids=ids)[0]
    assert not torch.allclose(clean, zeroed), "rewriting the site must change the output"
    with torch.no_grad():
        again = model(input_ids=ids)[0]
    assert torch.equal(clean, again), "hooks must be removed after the block"


def test_llama_site_reads_gated_activation():
    torch.manual_seed(0)
    model = FAMILIES["llama"]().eval()
    sites = find_sites(model, "llama")
    mlp = model.model.layers[0].mlp
    inputs, read = {}, {}
    handle = mlp.register_forward_pre_hook(lambda module, args: inputs.setdefault("x", args[0]))

    def record(layer, x):
        read.setdefault(layer, x.clone())

    with torch.no_grad(), sites.hooked(record):
        model(input_ids=torch.randint(3, 50, (1, 4)))
    handle.remove()
    x = inputs["x"]
    expected = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
    assert torch.allclose(read[0], expected, atol=1e-6)


def test_unsupported_architecture_is_an_input_error():
    from audit.errors import AuditInputError

    with pytest.raises(AuditInputError, match="architecture 't5' is not supported"):
        find_sites(torch.nn.Linear(2, 2), "t5")
