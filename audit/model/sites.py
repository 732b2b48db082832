"""Neuron sites: where a model's MLP neurons can be read (harvest) and rewritten (ablation).

A neuron is one channel of the input to an MLP's output projection, per token. A forward *pre*-hook on
that module sees exactly the post-activation vector (TransformerLens ``blocks.{l}.mlp.hook_post``).
The registry below maps each architecture to that module's path under ``model.base_model``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
from torch import nn

from ..errors import AuditInputError

# model_type -> (path of the output projection under base_model, with {layer}; kind of model)
SITE_REGISTRY: dict[str, tuple[str, str]] = {
    "gpt2": ("h.{layer}.mlp.c_proj", "causal-lm"),
    "gpt_neox": ("layers.{layer}.mlp.dense_4h_to_h", "causal-lm"),
    "llama": ("layers.{layer}.mlp.down_proj", "causal-lm"),
    "mistral": ("layers.{layer}.mlp.down_proj", "causal-lm"),
    "qwen2": ("layers.{layer}.mlp.down_proj", "causal-lm"),
    "qwen3": ("layers.{layer}.mlp.down_proj", "causal-lm"),
    "gemma3_text": ("layers.{layer}.mlp.down_proj", "causal-lm"),  # act(gate)·up, gelu_pytorch_tanh
    "bert": ("encoder.layer.{layer}.output.dense", "encoder"),
    "roberta": ("encoder.layer.{layer}.output.dense", "encoder"),
    "xlm-roberta": ("encoder.layer.{layer}.output.dense", "encoder"),
}

# gated MLPs (down_proj reads act(gate)·up): where act(gate) is computed, the "activation" LAPE counts
GATE_ACTIVATIONS: dict[str, str] = {name: "layers.{layer}.mlp.act_fn"
                                    for name in ("llama", "mistral", "qwen2", "qwen3", "gemma3_text")}

# A layer hook gets (layer index, the site's input of shape batch × tokens × neurons) and returns None
# to leave it alone or a tensor of the same shape to replace it.
LayerHook = Callable[[int, torch.Tensor], torch.Tensor | None]


def neuron_name(layer: int, neuron: int) -> str:
    """The name a person reads: ``L{layer}.N{index}``."""
    return f"L{layer}.N{neuron}"


@dataclass(frozen=True)
class NeuronSites:
    """The output-projection module of every layer and the number of neurons each one reads."""

    modules: tuple[nn.Module, ...]
    n_neurons: int
    path_template: str

    @property
    def n_layers(self) -> int:
        return len(self.modules)

    @contextlib.contextmanager
    def hooked(self, hook: LayerHook) -> Iterator[None]:
        """Register ``hook`` as a forward pre-hook on every site for the duration of the block."""

        def make(layer: int):
            def pre_hook(module: nn.Module, args: tuple):
                replaced = hook(layer, args[0])
                return None if replaced is None else (replaced, *args[1:])
            return pre_hook

        handles = [module.register_forward_pre_hook(make(layer)) for layer, module in enumerate(self.modules)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()


def find_sites(model: nn.Module, model_type: str) -> NeuronSites:
    """Locate the neuron sites of a Hugging Face model by its ``config.model_type``."""
    if model_type not in SITE_REGISTRY:
        raise AuditInputError(f"--model: architecture {model_type!r} is not supported yet "
                              f"(supported: {', '.join(sorted(SITE_REGISTRY))})")
    template, _ = SITE_REGISTRY[model_type]
    base = getattr(model, "base_model", model)
    modules: list[nn.Module] = []
    while True:
        try:
            modules.append(base.get_submodule(template.format(layer=len(modules))))
        except AttributeError:
            break
    if not modules:
        raise AuditInputError(f"--model: no MLP output projection found at {template.format(layer=0)!r} "
                              f"for architecture {model_type!r}")
    widths = {_input_width(m) for m in modules}
    if len(widths) != 1:
        raise AuditInputError(f"--model: layers have different MLP widths {sorted(widths)}; not supported")
    return NeuronSites(modules=tuple(modules), n_neurons=widths.pop(), path_template=template)


def model_kind(model_type: str) -> str:
    """``causal-lm`` or ``encoder`` for a registered architecture."""
    return SITE_REGISTRY[model_type][1]


def _input_width(module: nn.Module) -> int:
    if isinstance(module, nn.Linear):
        return module.in_features
    weight = getattr(module, "weight", None)
    if weight is not None and weight.ndim == 2:  # GPT-2's Conv1D stores (in, out)
        return int(weight.shape[0])
    raise AuditInputError(f"--model: cannot tell the input width of {type(module).__name__}")
