"""Causal LMs: what a neuron writes to the vocabulary, through W_out·W_U.

The final norm's elementwise scale is folded into W_U (as TransformerLens' ``fold_ln`` does), so a
neuron's logits are those the model would add for a unit-scale residual. Statistics over the whole vocabulary
(shift-invariant, so W_U need not be centred) feed the neuron classes of :mod:`audit.analysis.neuron_classes`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from ..analysis.polysemanticity import vocabulary_hint
from .loading import Model

FINAL_NORMS = ("norm", "ln_f", "final_layer_norm")  # Llama/Mistral/Qwen, GPT-2, GPT-NeoX


def output_weights(model: Model, layer: int) -> torch.Tensor:
    """The layer's output projection as (neurons × d_model)."""
    module = model.sites.modules[layer]
    weight = module.weight.detach().float()
    return weight.T if isinstance(module, nn.Linear) else weight  # GPT-2's Conv1D stores (in, out)


def final_norm_scale(model: Model) -> torch.Tensor | None:
    """The elementwise scale of the norm before the unembedding, where the architecture has one."""
    base = getattr(model.module, "base_model", model.module)
    for name in FINAL_NORMS:
        scale = getattr(getattr(base, name, None), "weight", None)
        if isinstance(scale, torch.Tensor) and scale.ndim == 1:
            return scale.detach().float()
    return None


def unembedding(model: Model) -> torch.Tensor | None:
    """W_U (vocab × d_model) with the final norm's scale folded in; None for encoders."""
    unembed = model.module.get_output_embeddings() if model.kind == "causal-lm" else None
    if unembed is None:
        return None
    w_u = unembed.weight.detach().float()
    scale = final_norm_scale(model)
    return w_u if scale is None or scale.shape != w_u.shape[1:] else w_u * scale.to(w_u.device)


def vocabulary_effects(model: Model, neurons: list[tuple[int, int]], *,
                       k: int = 10) -> dict[tuple[int, int], dict[str, Any]]:
    """For each (layer, neuron): kurtosis, skew and variance of W_out[n]·W_U over the vocabulary, the norm of
    W_out[n], the top promoted and suppressed tokens, and the prediction/suppression hint. Empty for encoders."""
    w_u = unembedding(model)
    if w_u is None:
        return {}
    found = {}
    tokens = model.tokenizer.convert_ids_to_tokens
    for layer in sorted({layer for layer, _ in neurons}):
        w_out = output_weights(model, layer).to(w_u.device)
        for neuron in sorted(index for at, index in neurons if at == layer):
            logits = (w_u @ w_out[neuron]).cpu().numpy().astype(np.float64)
            order = np.argsort(logits)
            kurtosis, skew = float(stats.kurtosis(logits)), float(stats.skew(logits))
            found[(layer, neuron)] = {
                "kurtosis": kurtosis, "skew": skew, "hint": vocabulary_hint(kurtosis, skew),
                "variance": float(logits.var()), "weight_norm": float(w_out[neuron].norm()),
                "promoted": [[tokens(int(i)), float(logits[i])] for i in order[::-1][:k]],
                "suppressed": [[tokens(int(i)), float(logits[i])] for i in order[:k]],
            }
    return found


def vocabulary_statistics(model: Model, *, chunk: int = 512) -> dict[str, np.ndarray] | None:
    """For every neuron, arrays (layers × neurons): kurtosis (excess), skew and variance of W_out[n]·W_U over
    the vocabulary, and the norm of W_out[n]. None for encoders. Works in neuron chunks so memory stays at
    vocab × ``chunk`` floats."""
    w_u = unembedding(model)
    if w_u is None:
        return None
    shape = (model.n_layers, model.neurons_per_layer)
    out = {name: np.zeros(shape) for name in ("kurtosis", "skew", "variance", "norm")}
    with torch.inference_mode():
        for layer in range(model.n_layers):
            w_out = output_weights(model, layer).to(w_u.device)
            for start in range(0, w_out.shape[0], chunk):
                block = w_out[start:start + chunk]
                logits = w_u @ block.T  # vocab × chunk
                centred = logits - logits.mean(dim=0)
                squared = centred * centred
                m2 = squared.mean(dim=0).double()
                m3 = (squared * centred).mean(dim=0).double()
                m4 = (squared * squared).mean(dim=0).double()
                safe = m2.clamp(min=1e-30)
                span = slice(start, start + block.shape[0])
                out["variance"][layer, span] = m2.cpu().numpy()
                out["skew"][layer, span] = (m3 / safe.pow(1.5)).cpu().numpy()
                out["kurtosis"][layer, span] = (m4 / (safe * safe) - 3.0).cpu().numpy()
                out["norm"][layer, span] = block.norm(dim=1).double().cpu().numpy()
    return out
