"""Write a tiny Llama as a GGUF file in-process (F32 tensors, a byte-level BPE tokenizer), for loader tests.

Tensors follow llama.cpp's naming and its rotary permutation of the query/key rows, so a loader that
follows the format reproduces the source model exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from tests.tiny import CONCEPT, ORDINARY

# Hugging Face parameter name (with {i} for the block) → GGUF tensor name
HF_TO_GGUF = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
    "model.layers.{i}.input_layernorm.weight": "blk.{i}.attn_norm.weight",
    "model.layers.{i}.post_attention_layernorm.weight": "blk.{i}.ffn_norm.weight",
    "model.layers.{i}.self_attn.q_proj.weight": "blk.{i}.attn_q.weight",
    "model.layers.{i}.self_attn.k_proj.weight": "blk.{i}.attn_k.weight",
    "model.layers.{i}.self_attn.v_proj.weight": "blk.{i}.attn_v.weight",
    "model.layers.{i}.self_attn.o_proj.weight": "blk.{i}.attn_output.weight",
    "model.layers.{i}.mlp.gate_proj.weight": "blk.{i}.ffn_gate.weight",
    "model.layers.{i}.mlp.up_proj.weight": "blk.{i}.ffn_up.weight",
    "model.layers.{i}.mlp.down_proj.weight": "blk.{i}.ffn_down.weight",
}


def build_llama(*, n_layers: int = 2, hidden: int = 32, intermediate: int = 64, seed: int = 0):
    """A tiny random LlamaForCausalLM and its byte-level BPE tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = " ".join((*ORDINARY, *CONCEPT))
    tok.train_from_iterator([text] * 3, trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>", "</s>"],
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                        model_input_names=["input_ids", "attention_mask"])
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=n_layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, bos_token_id=0, eos_token_id=1, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # random norms, so a loader that dropped them would show
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.uniform_(0.5, 1.5)
    return model, tokenizer


def _permute(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's reordering of query/key rows for its rotary layout."""
    return weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(
        weight.shape)


def write_gguf(model, tokenizer, path: Path, *, drop: Sequence[str] = (),
               reshape: dict[str, tuple[int, ...]] | None = None) -> Path:
    """Write ``model`` as GGUF; ``drop`` leaves out GGUF tensors by name, ``reshape`` truncates some."""
    import gguf

    config = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_freq_base(float(getattr(config, "rope_theta", None) or 10000.0))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    vocab = tokenizer.get_vocab()
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in ("<s>", "</s>") else gguf.TokenType.NORMAL
                            for t in tokens])
    merges = tokenizer.backend_tokenizer.model.__getstate__()
    import json

    merges = [" ".join(m) if isinstance(m, list) else m for m in json.loads(merges)["merges"]]
    writer.add_token_merges(merges)
    writer.add_bos_token_id(config.bos_token_id)
    writer.add_eos_token_id(config.eos_token_id)
    writer.add_add_bos_token(False)
    reshape = reshape or {}
    for hf_name, tensor in model.state_dict().items():
        layer = hf_name.split(".")[2] if hf_name.startswith("model.layers.") else None
        key = hf_name.replace(f".{layer}.", ".{i}.", 1) if layer is not None else hf_name
        name = HF_TO_GGUF[key].format(i=layer)
        if name in drop:
            continue
        data = tensor.detach().float().numpy()
        if name.endswith("attn_q.weight"):
            data = _permute(data, config.num_attention_heads)
        elif name.endswith("attn_k.weight"):
            data = _permute(data, config.num_key_value_heads)
        if name in reshape:
            data = data[tuple(slice(0, n) for n in reshape[name])]
        writer.add_tensor(name, np.ascontiguousarray(data))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
