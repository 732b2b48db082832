"""How often each MLP neuron is active (> 0) on a language's text: the counts LAPE (Tang et al. 2024) starts from.

The authors count the output of the MLP nonlinearity: ``act(gate)`` for gated MLPs (their ``activation.py``;
see :mod:`audit.model.gates`). Padding and special tokens (e.g. Gemma's ``<bos>``) are not counted. A
harvest with ``active_counts`` counts the same way in its own pass; this one is for texts nothing else reads.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .gates import gate_hooks
from .harvest import batch_plan, model_inputs, real_token_mask, tokenize
from .loading import Model
from .outputs import forward


def activation_counts(model: Model, texts: Sequence[str], *, batch_size: int = 32,
                      max_length: int = 128) -> tuple[np.ndarray, int]:
    """Per neuron (flat over layers × neurons): how many real tokens of ``texts`` it is active (> 0) on, and
    the number of real tokens. Runs the base model only (no LM head)."""
    n_layers, n_neurons = model.n_layers, model.neurons_per_layer
    counts = torch.zeros(n_layers, n_neurons, dtype=torch.int64, device=model.device)
    state: dict[str, torch.Tensor] = {}

    def count(layer: int, x: torch.Tensor) -> None:
        counts[layer] += ((x > 0) & state["mask"][..., None]).sum(dim=(0, 1))

    total = 0
    with torch.inference_mode(), gate_hooks(model, count) as gated:
        for rows in batch_plan(texts, batch_size, model=model, max_length=max_length):
            encoded = tokenize(model, [texts[i] for i in rows], max_length)
            state["mask"] = real_token_mask(encoded).to(model.device)
            total += int(state["mask"].sum())
            inputs = model_inputs(model, encoded)
            if gated:
                forward(model, inputs, outputs=False)
            else:
                with model.sites.hooked(lambda layer, x: count(layer, x)):
                    forward(model, inputs, outputs=False)
    return counts.reshape(-1).cpu().numpy(), total


def predicted_tokens(model: Model, texts: Sequence[str], *, max_length: int = 128) -> np.ndarray:
    """Per text: how many tokens a causal LM predicts (attended tokens after the first), as
    :func:`audit.model.outputs.mean_loglik` averages over."""
    encoded = tokenize(model, texts, max_length)
    return (encoded["attention_mask"][:, 1:].sum(dim=1)).numpy().astype(np.int64)
