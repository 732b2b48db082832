"""Where a gated MLP computes ``act(gate)``: the activation LAPE counts (Tang et al. 2024).

For gated MLPs (Llama, Qwen, Gemma) the down-projection input a harvest reads is ``act(gate)·up``, whose sign
also depends on ``up``; the paper counts the nonlinearity's output alone. For ungated MLPs (GPT-2, BERT) the
two are the same vector, and there is no separate module to hook.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from .loading import Model
from .sites import GATE_ACTIVATIONS


def activation_modules(model: Model) -> list[torch.nn.Module] | None:
    """The per-layer modules whose output is ``act(gate)`` for gated MLPs; None for ungated MLPs."""
    template = GATE_ACTIVATIONS.get(model.model_type)
    if template is None:
        return None
    base = getattr(model.module, "base_model", model.module)
    return [base.get_submodule(template.format(layer=layer)) for layer in range(model.n_layers)]


@contextlib.contextmanager
def gate_hooks(model: Model, read: Callable[[int, torch.Tensor], None]) -> Iterator[bool]:
    """While active, ``read(layer, act(gate))`` after each layer's gate nonlinearity. Yields whether the
    model has gates: when it has none, nothing is hooked and the caller reads the site value instead."""
    modules = activation_modules(model)
    handles = [module.register_forward_hook(lambda _m, _a, out, layer=layer: read(layer, out))
               for layer, module in enumerate(modules or ())]
    try:
        yield modules is not None
    finally:
        for handle in handles:
            handle.remove()
