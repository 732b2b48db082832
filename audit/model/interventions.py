"""Interventions at the neuron sites: rewrite chosen neurons and measure the model's outputs.

Every intervention is affine per neuron, x' = scale·x + offset: ``zero`` (0, 0), ``mean`` (0, the
neuron's mean) and ``dampen`` (AurA's 1 − 2·(AUROC − 0.5), 0). Several interventions run in one forward
by stacking copies of a batch, each copy rewritten by its own intervention; the clean outputs of a batch
are computed once and shared by all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..config import ABLATION_MODES
from .harvest import model_inputs, tokenize
from .loading import Model
from .outputs import encode_targets, mean_kl, mean_loglik, model_outputs, target_scores


@dataclass(frozen=True)
class Intervention:
    """Neurons (flat indices over layers × neurons) with the scale and offset each one gets."""

    neurons: np.ndarray
    scale: np.ndarray
    offset: np.ndarray

    def pairs(self, n_neurons: int) -> list[list[int]]:
        """``[[layer, neuron], …]`` for results.json."""
        return [list(divmod(int(flat), n_neurons)) for flat in self.neurons]


def make_intervention(neurons: Sequence[int], mode: str, *, means: np.ndarray | None = None,
                      scales: Sequence[float] | None = None) -> Intervention:
    """``zero`` / ``mean`` (needs ``means``, indexed by flat neuron) / ``dampen`` (needs ``scales``, one per neuron)."""
    neurons = np.asarray(neurons, dtype=np.int64)
    if mode == "zero":
        return Intervention(neurons, np.zeros(len(neurons)), np.zeros(len(neurons)))
    if mode == "mean":
        if means is None:
            raise ValueError("mean ablation needs each neuron's mean activation")
        return Intervention(neurons, np.zeros(len(neurons)), np.asarray(means)[neurons].astype(float))
    if mode == "dampen":
        if scales is None or len(scales) != len(neurons):
            raise ValueError("dampening needs one scale per neuron")
        return Intervention(neurons, np.asarray(scales, dtype=float), np.zeros(len(neurons)))
    raise ValueError(f"The 'mode' parameter must be one of {ABLATION_MODES}. Got {mode!r} instead.")


def aura_scale(auroc: np.ndarray) -> np.ndarray:
    """AurA dampening factor 1 − 2·(AUROC − 0.5), clipped to [0, 1] (neurons at chance are left alone)."""
    return np.clip(1.0 - 2.0 * (np.asarray(auroc, dtype=float) - 0.5), 0.0, 1.0)


@dataclass
class Measurements:
    """Per-text outputs, clean and under each intervention (rows of the ``*_ablated`` arrays)."""

    kind: str
    loglik: np.ndarray | None = None  # causal: (texts,) clean mean log-likelihood per token
    loglik_ablated: np.ndarray | None = None  # (interventions, texts)
    kl: np.ndarray | None = None  # causal: (interventions, texts) mean KL(clean ‖ ablated) per position
    embedding: np.ndarray | None = None  # encoder: (texts, hidden) clean mean-pooled embedding
    embedding_ablated: np.ndarray | None = None  # (interventions, texts, hidden)


def measure(model: Model, texts: Sequence[str], interventions: Sequence[Intervention], *, batch_size: int = 32,
            max_length: int = 128, max_stack: int | None = None) -> Measurements:
    """Outputs of ``texts`` clean and under every intervention: one clean pass, stacked intervened passes.

    ``max_stack`` caps the sequences in one stacked forward; by default one batch on CPU (bigger batches
    bought nothing there, measured) and 16 batches on an accelerator.
    """
    if max_stack is None:
        max_stack = batch_size if model.device.type == "cpu" else 16 * batch_size
    n_texts, n_runs = len(texts), len(interventions)
    causal = model.kind == "causal-lm"
    out = Measurements(kind=model.kind)
    if causal:
        out.loglik = np.zeros(n_texts)
        out.loglik_ablated, out.kl = np.zeros((n_runs, n_texts)), np.zeros((n_runs, n_texts))
    else:
        hidden = model.module.config.hidden_size
        out.embedding = np.zeros((n_texts, hidden), np.float32)
        out.embedding_ablated = np.zeros((n_runs, n_texts, hidden), np.float32)
    affine = _affine_tables(model, interventions)
    stack = max(1, min(n_runs, max_stack // batch_size)) if n_runs else 1
    state: dict[str, object] = {}
    rewrite = _stacked_rewrite(affine, state)

    order = np.argsort([len(t) for t in texts], kind="stable")
    with torch.inference_mode(), model.sites.hooked(rewrite):
        for start in range(0, n_texts, batch_size):
            rows = order[start:start + batch_size]
            inputs = model_inputs(model, tokenize(model, [texts[i] for i in rows], max_length))
            state["runs"] = None
            clean = model_outputs(model, inputs)
            if causal:
                out.loglik[rows] = mean_loglik(clean, inputs).cpu().numpy()
            else:
                out.embedding[rows] = clean.cpu().numpy()
            for first in range(0, n_runs, stack):
                runs = torch.arange(first, min(first + stack, n_runs))
                state["runs"] = runs
                stacked = {k: v.repeat(len(runs), *([1] * (v.dim() - 1))) for k, v in inputs.items()}
                result = model_outputs(model, stacked)
                for r, run in enumerate(runs.tolist()):
                    part = result[r * len(rows):(r + 1) * len(rows)]
                    if causal:
                        out.loglik_ablated[run, rows] = mean_loglik(part, inputs).cpu().numpy()
                        out.kl[run, rows] = mean_kl(clean, part, inputs).cpu().numpy()
                    else:
                        out.embedding_ablated[run, rows] = part.cpu().numpy()
    return out


def measure_targets(model: Model, prompts: Sequence[str], targets: Sequence[str],
                    interventions: Sequence[Intervention], *, batch_size: int = 16,
                    max_length: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Causal LMs: log P(target | prompt) summed over target tokens, clean (pairs,) and under every
    intervention (interventions × pairs), with the same stacking as :func:`measure`."""
    if model.kind != "causal-lm":
        raise ValueError("target log-probabilities need a causal language model")
    n_pairs, n_runs = len(prompts), len(interventions)
    clean_scores, ablated_scores = np.zeros(n_pairs), np.zeros((n_runs, n_pairs))
    affine = _affine_tables(model, interventions)
    stack = max(1, n_runs if model.device.type != "cpu" else 1)
    state: dict[str, object] = {}
    rewrite = _stacked_rewrite(affine, state)

    with torch.inference_mode(), model.sites.hooked(rewrite):
        for start in range(0, n_pairs, batch_size):
            span = slice(start, min(start + batch_size, n_pairs))
            inputs, firsts = encode_targets(model, prompts[span], targets[span], max_length=max_length)
            state["runs"] = None
            clean_scores[span] = target_scores(model_outputs(model, inputs), inputs, firsts)
            for first in range(0, n_runs, stack):
                runs = torch.arange(first, min(first + stack, n_runs))
                state["runs"] = runs
                stacked = {k: v.repeat(len(runs), *([1] * (v.dim() - 1))) for k, v in inputs.items()}
                result = model_outputs(model, stacked)
                rows = len(firsts)
                for r, run in enumerate(runs.tolist()):
                    ablated_scores[run, span] = target_scores(result[r * rows:(r + 1) * rows], inputs, firsts)
    return clean_scores, ablated_scores


def _stacked_rewrite(affine: dict[int, tuple[torch.Tensor, torch.Tensor]], state: dict[str, object]):
    """A layer hook that rewrites each stacked copy of the batch with its own run's affine map
    (``state["runs"]``: the runs stacked in this forward; None for a clean pass)."""

    def rewrite(layer: int, x: torch.Tensor) -> torch.Tensor | None:
        runs = state.get("runs")
        if runs is None or layer not in affine:
            return None
        scale, offset = affine[layer]
        scale, offset = scale[runs].to(x.dtype), offset[runs].to(x.dtype)
        copies = x.view(len(runs), -1, *x.shape[1:])
        return (copies * scale[:, None, None, :] + offset[:, None, None, :]).view_as(x)

    return rewrite


def _affine_tables(model: Model, interventions: Sequence[Intervention]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: (interventions × neurons) scale and offset tensors; identity where a run leaves a neuron."""
    n_neurons, tables = model.neurons_per_layer, {}
    for run, intervention in enumerate(interventions):
        for flat, scale, offset in zip(intervention.neurons, intervention.scale, intervention.offset):
            layer, neuron = divmod(int(flat), n_neurons)
            if layer not in tables:
                tables[layer] = (torch.ones(len(interventions), n_neurons), torch.zeros(len(interventions), n_neurons))
            tables[layer][0][run, neuron] = float(scale)
            tables[layer][1][run, neuron] = float(offset)
    return {layer: (s.to(model.device), o.to(model.device)) for layer, (s, o) in tables.items()}
