"""Causal LMs: what a neuron writes to the vocabulary, through W_out·W_U (final norm not applied)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from ..analysis.polysemanticity import vocabulary_hint
from .loading import Model


def output_weights(model: Model, layer: int) -> torch.Tensor:
    """The layer's output projection as (neurons × d_model)."""
    module = model.sites.modules[layer]
    weight = module.weight.detach().float()
    return weight.T if isinstance(module, nn.Linear) else weight  # GPT-2's Conv1D stores (in, out)


def vocabulary_effects(model: Model, neurons: list[tuple[int, int]], *,
                       k: int = 10) -> dict[tuple[int, int], dict[str, Any]]:
    """For each (layer, neuron): kurtosis and skew of W_out[n]·W_U over the vocabulary, the top promoted and
    suppressed tokens, and the prediction/suppression hint. Empty for encoders."""
    unembed = model.module.get_output_embeddings() if model.kind == "causal-lm" else None
    if unembed is None:
        return {}
    w_u = unembed.weight.detach().float()  # vocab × d_model
    found = {}
    for layer in sorted({layer for layer, _ in neurons}):
        w_out = output_weights(model, layer)
        for neuron in sorted(index for at, index in neurons if at == layer):
            logits = (w_u @ w_out[neuron]).cpu().numpy().astype(np.float64)
            order = np.argsort(logits)
            tokens = model.tokenizer.convert_ids_to_tokens
            kurtosis, skew = float(stats.kurtosis(logits)), float(stats.skew(logits))
            found[(layer, neuron)] = {
                "kurtosis": kurtosis, "skew": skew, "hint": vocabulary_hint(kurtosis, skew),
                "promoted": [[tokens(int(i)), float(logits[i])] for i in order[::-1][:k]],
                "suppressed": [[tokens(int(i)), float(logits[i])] for i in order[:k]],
            }
    return found
