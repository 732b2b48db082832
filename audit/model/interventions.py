"""Interventions at the neuron sites: rewrite chosen neurons and measure the model's outputs.

Every intervention is affine per neuron, x' = scale·x + offset: ``zero`` (0, 0), ``mean`` (0, the
neuron's mean) and ``dampen`` (AurA's 1 − 2·(AUROC − 0.5), 0). Several interventions run in one forward
by stacking copies of a batch, each copy rewritten by its own intervention; the clean outputs of a batch
are computed once and shared by all of them (:class:`Runner` keeps them across calls), and a forward under
an intervention starts at its first rewritten layer from the residual stream kept in the clean pass.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..config import ABLATION_MODES
from .harvest import batch_plan, model_inputs, tokenize
from .loading import Model
from .outputs import encode_targets, mean_loglik, model_outputs, warm_up


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


LOGITS_BUDGET = 512 << 20  # causal LMs: bytes of stacked next-token log-probabilities in one forward
# Rows of one text batch in a runner. Short batches pad less (a concept set's 25 evaluation texts on SmolLM2
# padded 16-27 % of their positions as one batch of 32, 3-5 % as batches of 8); stacking interventions keeps
# each forward as large as before.
RUNNER_ROWS = 8


class Runner:
    """Clean outputs of ``texts``, kept, and their outputs under any number of interventions, on demand.

    The clean pass runs once, in batches of similar length (at most ``batch_rows`` texts); it keeps each
    batch's clean outputs and the residual stream entering every layer in ``start_layers``. An intervention
    whose first rewritten layer is L then runs from layer L only (the blocks before it return the kept
    stream), several interventions per forward by stacking copies of a batch. Call :meth:`run` as often as
    needed (e.g. a sequential test drawing random sets in chunks); every call reuses the clean pass. ``kl``
    False (causal LMs): no KL is computed, so the clean next-token distributions (texts × positions ×
    vocabulary) are not kept — with a 262,144-token vocabulary they would not fit in memory for a thousand
    texts.
    """

    def __init__(self, model: Model, texts: Sequence[str], *, batch_size: int = 32, max_length: int = 128,
                 start_layers: Sequence[int] = (), max_stack: int | None = None, kl: bool = True,
                 batch_rows: int = RUNNER_ROWS) -> None:
        self.model, self.n_texts, self.kl = model, len(texts), kl
        self.max_stack = max_stack if max_stack is not None else 16 * batch_size
        self.blocks = layer_blocks(model)
        self.kept_layers = sorted({int(layer) for layer in start_layers if 0 < int(layer) < model.n_layers})
        self.batches: list[dict[str, object]] = []
        causal = model.kind == "causal-lm"
        self.loglik = np.zeros(self.n_texts) if causal else None
        self.embedding = None if causal else np.zeros((self.n_texts, model.module.config.hidden_size), np.float32)
        with torch.inference_mode(), _kept_streams(self.blocks, self.kept_layers) as kept:
            warm_up()
            for rows in batch_plan(texts, min(batch_size, batch_rows), model=model, max_length=max_length):
                inputs = model_inputs(model, tokenize(model, [texts[i] for i in rows], max_length))
                if causal and not kl:  # perplexity only
                    clean = None
                    self.loglik[rows] = _loglik_from_logits(_next_token_logits(model, inputs), inputs).cpu().numpy()
                elif causal:
                    clean = _forward(model, inputs)
                    self.loglik[rows] = mean_loglik(clean, inputs).cpu().numpy()
                else:
                    clean = _forward(model, inputs)
                    self.embedding[rows] = clean.cpu().numpy()
                self.batches.append({"rows": rows, "inputs": inputs, "streams": dict(kept),
                                     "clean": clean if (kl or not causal) else None})
                kept.clear()

    def run(self, interventions: Sequence[Intervention]) -> Measurements:
        """Outputs under each intervention (rows of the ``*_ablated`` arrays), with the kept clean ones."""
        model, n_runs = self.model, len(interventions)
        out = Measurements(kind=model.kind)
        if model.kind == "causal-lm":
            out.loglik = self.loglik
            out.loglik_ablated = np.zeros((n_runs, self.n_texts))
            out.kl = np.zeros((n_runs, self.n_texts)) if self.kl else None
        else:
            out.embedding = self.embedding
            out.embedding_ablated = np.zeros((n_runs, self.n_texts, self.embedding.shape[1]), np.float32)
        firsts = np.array([self.start_layer(iv) for iv in interventions], dtype=np.int64)
        state: dict[str, object] = {}
        with torch.inference_mode(), model.sites.hooked(_stacked_rewrite(state)):
            for batch in self.batches:
                rows, inputs, clean = batch["rows"], batch["inputs"], batch["clean"]
                probs = clean.exp() if model.kind == "causal-lm" and clean is not None else None
                stack = max(1, self.max_stack // len(rows))
                if model.kind == "causal-lm":  # the stacked log-probabilities stay within LOGITS_BUDGET bytes
                    width = clean.numel() if clean is not None else \
                        inputs["input_ids"].numel() * model.module.config.vocab_size
                    stack = max(1, min(stack, LOGITS_BUDGET // (4 * width)))
                output = _next_token_logits if model.kind == "causal-lm" else _forward
                for runs, result in _stacked_forwards(model, self.blocks, state, interventions, firsts, inputs,
                                                      batch["streams"], stack, lambda x: output(model, x)):
                    for r, run in enumerate(runs.tolist()):
                        part = result[r * len(rows):(r + 1) * len(rows)]
                        if model.kind == "causal-lm":
                            if probs is None:  # perplexity only: no vocabulary-wide log-softmax
                                out.loglik_ablated[run, rows] = _loglik_from_logits(part, inputs).cpu().numpy()
                                continue
                            part = torch.log_softmax(part, dim=-1)
                            out.loglik_ablated[run, rows] = mean_loglik(part, inputs).cpu().numpy()
                            out.kl[run, rows] = _mean_kl(clean, probs, part, inputs).cpu().numpy()
                        else:
                            out.embedding_ablated[run, rows] = part.cpu().numpy()
        return out

    def start_layer(self, intervention: Intervention) -> int:
        """The layer a forward under ``intervention`` starts from: its first rewritten layer if the stream
        entering it is kept, else 0."""
        if not len(intervention.neurons):
            return 0
        first = int(np.min(intervention.neurons)) // self.model.neurons_per_layer
        return first if first in self.kept_layers else 0


def measure(model: Model, texts: Sequence[str], interventions: Sequence[Intervention], *, batch_size: int = 32,
            max_length: int = 128, max_stack: int | None = None, kl: bool = True) -> Measurements:
    """Outputs of ``texts`` clean and under every intervention: one clean pass, stacked intervened passes,
    each starting from the intervention's first rewritten layer.

    ``max_stack`` caps the sequences in one stacked forward (default 16 batches: on 2 CPU cores 12 random sets of
    25 texts per forward took 0.3× the time per set of one set per forward; causal LMs also stay within
    ``LOGITS_BUDGET``). Batches hold ``RUNNER_ROWS`` texts when enough interventions stack onto them to fill
    a forward of ``batch_size`` rows, more when few do: a clean pass alone ran 1,000 reference lines through
    SmolLM2 in 53 s as batches of 8 and in 49 s as batches of 32.
    """
    starts = {int(np.min(iv.neurons)) // model.neurons_per_layer for iv in interventions if len(iv.neurons)}
    rows = min(batch_size, max(RUNNER_ROWS, -(-batch_size // max(len(interventions), 1))))
    runner = Runner(model, texts, batch_size=batch_size, max_length=max_length, start_layers=sorted(starts),
                    max_stack=max_stack, kl=kl, batch_rows=rows)
    return runner.run(interventions)


def measure_targets(model: Model, prompts: Sequence[str], targets: Sequence[str],
                    interventions: Sequence[Intervention], *, batch_size: int = 16,
                    max_length: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Causal LMs: log P(target | prompt) summed over target tokens, clean (pairs,) and under every
    intervention (interventions × pairs). As in :class:`Runner`, interventions share stacked forwards (within
    ``LOGITS_BUDGET``) that start at their first rewritten layer from the clean pass's stream; only the
    positions that predict a target token go through the LM head."""
    if model.kind != "causal-lm":
        raise ValueError("target log-probabilities need a causal language model")
    n_pairs, n_runs = len(prompts), len(interventions)
    clean_scores, ablated_scores = np.zeros(n_pairs), np.zeros((n_runs, n_pairs))
    blocks = layer_blocks(model)
    starts = np.array([int(np.min(iv.neurons)) // model.neurons_per_layer if len(iv.neurons) else 0
                       for iv in interventions], dtype=np.int64)
    kept_layers = sorted({int(layer) for layer in starts if layer > 0})
    state: dict[str, object] = {}
    with torch.inference_mode(), model.sites.hooked(_stacked_rewrite(state)):
        for start in range(0, n_pairs, batch_size):
            span = slice(start, min(start + batch_size, n_pairs))
            inputs, firsts = encode_targets(model, prompts[span], targets[span], max_length=max_length)
            positions = _target_positions(inputs, firsts)
            state["tables"] = None
            with _kept_streams(blocks, kept_layers) as kept:
                clean_scores[span] = _target_sums(_kept_logits(model, inputs, positions), inputs, firsts, positions)
                streams = dict(kept)
            rows = len(firsts)
            stack = max(1, LOGITS_BUDGET // (4 * rows * len(positions) * model.module.config.vocab_size))
            for runs, logits in _stacked_forwards(model, blocks, state, interventions, starts, inputs, streams, stack,
                                                  lambda stacked: _kept_logits(model, stacked, positions)):
                for r, run in enumerate(runs.tolist()):
                    ablated_scores[run, span] = _target_sums(logits[r * rows:(r + 1) * rows], inputs, firsts,
                                                             positions)
    return clean_scores, ablated_scores


def _stacked_forwards(model: Model, blocks: Sequence[nn.Module], state: dict[str, object],
                      interventions: Sequence[Intervention], starts: np.ndarray, inputs: dict[str, torch.Tensor],
                      streams: dict[int, object], stack: int,
                      compute: Callable[..., torch.Tensor]) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """The interventions that start at the same layer (``starts``), ``stack`` at a time: one forward of that
    many copies of ``inputs`` (``compute(stacked)``), each copy rewritten by its own intervention (through
    ``state``, read by :func:`_stacked_rewrite`) and starting from the kept ``streams``. Yields the runs
    (indices into ``interventions``) and the forward's result."""
    try:
        for first_layer in np.unique(starts):
            group = np.flatnonzero(starts == first_layer)
            for chunk in range(0, len(group), stack):
                runs = group[chunk:chunk + stack]
                state["tables"] = _affine_tables(model, [interventions[r] for r in runs])
                stacked = {k: v.repeat(len(runs), *([1] * (v.dim() - 1))) for k, v in inputs.items()}
                with _skipped(blocks, int(first_layer), streams.get(int(first_layer)), len(runs)):
                    result = compute(stacked)
                yield runs, result
    finally:
        state["tables"] = None


def _target_positions(inputs: dict[str, torch.Tensor], firsts: Sequence[int]) -> torch.Tensor:
    """The positions whose next-token prediction is a target token in some row (one span for the batch)."""
    lengths = inputs["attention_mask"].sum(dim=1)
    return torch.arange(min(firsts), int(lengths.max()) - 1, device=inputs["input_ids"].device)


def _kept_logits(model: Model, inputs: dict[str, torch.Tensor], positions: torch.Tensor) -> torch.Tensor:
    """float32 logits at ``positions`` only (``logits_to_keep``, where the model's forward takes it)."""
    if "logits_to_keep" in inspect.signature(model.module.forward).parameters:
        return model.module(**inputs, use_cache=False, logits_to_keep=positions).logits.float()
    return model.module(**inputs, use_cache=False).logits[:, positions].float()


def _target_sums(logits: torch.Tensor, inputs: dict[str, torch.Tensor], firsts: Sequence[int],
                 positions: torch.Tensor) -> np.ndarray:
    """Per row: the summed log-probability of its target tokens (those after ``firsts[row]``), from logits
    at ``positions``; as :func:`audit.model.outputs.target_scores` over the full log-softmax."""
    following = inputs["input_ids"][:, positions + 1]
    token = logits.gather(-1, following.unsqueeze(-1))[..., 0] - torch.logsumexp(logits, dim=-1)
    lengths = inputs["attention_mask"].sum(dim=1, keepdim=True)
    first = torch.tensor(firsts, device=token.device)[:, None]
    scored = (positions[None] >= first) & (positions[None] < lengths - 1)
    return (token * scored).sum(dim=1).double().cpu().numpy()


def _stacked_rewrite(state: dict[str, object]):
    """A layer hook that rewrites each stacked copy of the batch with its own run's affine map
    (``state["tables"]``: per layer, runs × neurons scale and offset; None for a clean pass)."""

    def rewrite(layer: int, x: torch.Tensor) -> torch.Tensor | None:
        tables = state.get("tables")
        if tables is None or layer not in tables:
            return None
        scale, offset = tables[layer]
        scale, offset = scale.to(x.dtype), offset.to(x.dtype)
        copies = x.view(len(scale), -1, *x.shape[1:])
        return (copies * scale[:, None, None, :] + offset[:, None, None, :]).view_as(x)

    return rewrite


def _affine_tables(model: Model, interventions: Sequence[Intervention]) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer: (interventions × neurons) scale and offset tensors; identity where a run leaves a neuron."""
    n_neurons, n_runs = model.neurons_per_layer, len(interventions)
    layers = sorted({int(layer) for iv in interventions for layer in np.unique(iv.neurons // n_neurons)})
    tables = {layer: (np.ones((n_runs, n_neurons), np.float32), np.zeros((n_runs, n_neurons), np.float32))
              for layer in layers}
    for run, iv in enumerate(interventions):
        layer_of, neuron_of = np.divmod(np.asarray(iv.neurons, dtype=np.int64), n_neurons)
        for layer in np.unique(layer_of):
            at = layer_of == layer
            tables[int(layer)][0][run, neuron_of[at]] = iv.scale[at]
            tables[int(layer)][1][run, neuron_of[at]] = iv.offset[at]
    return {layer: (torch.from_numpy(s).to(model.device), torch.from_numpy(o).to(model.device))
            for layer, (s, o) in tables.items()}


def _next_token_logits(model: Model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """A causal LM's float32 next-token logits at every position but the last, without a key-value cache."""
    return model.module(**inputs, use_cache=False).logits[:, :-1].float()


def _mean_kl(clean: torch.Tensor, probs: torch.Tensor, other: torch.Tensor,
             inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """:func:`mean_kl` with the clean probabilities (``clean.exp()``) computed once per batch, not per run."""
    per_position = (probs * (clean - other)).sum(dim=-1)
    predicted = inputs["attention_mask"][:, 1:].to(per_position.dtype)
    return (per_position * predicted).sum(dim=1) / predicted.sum(dim=1).clamp(min=1)


def _loglik_from_logits(logits: torch.Tensor, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per text: :func:`mean_loglik` straight from the logits: a token's log-probability is its logit minus
    the position's logsumexp, so no vocabulary-wide log-softmax is written per run (KL still takes one: its
    shortcut Σ p log p − Σ p z + logsumexp z cancels to ~1 % error at the KLs of single neurons)."""
    predicted = inputs["attention_mask"][:, 1:].to(logits.dtype)
    token = logits.gather(-1, inputs["input_ids"][:, 1:].unsqueeze(-1))[..., 0] - torch.logsumexp(logits, dim=-1)
    return (token * predicted).sum(dim=1) / predicted.sum(dim=1).clamp(min=1)


def _forward(model: Model, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """:func:`model_outputs` without a key-value cache (a forward that skips layers has no cache to fill)."""
    if model.kind == "causal-lm":
        return model_outputs(model, {**inputs, "use_cache": False})
    return model_outputs(model, inputs)


def layer_blocks(model: Model) -> list[nn.Module]:
    """The transformer block of every layer: the module at the site path cut after the layer index
    (``layers.{layer}`` of ``layers.{layer}.mlp.down_proj``)."""
    template = model.sites.path_template
    prefix = template[:template.index("{layer}") + len("{layer}")]
    base = getattr(model.module, "base_model", model.module)
    return [base.get_submodule(prefix.format(layer=layer)) for layer in range(model.n_layers)]


@contextlib.contextmanager
def _kept_streams(blocks: Sequence[nn.Module], layers: Sequence[int]) -> Iterator[dict[int, object]]:
    """While active, the output of block L − 1 (the stream entering layer L) of the latest forward, by L."""
    kept: dict[int, object] = {}

    def keep(layer: int):
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            kept[layer] = output
        return hook

    handles = [blocks[layer - 1].register_forward_hook(keep(layer)) for layer in layers]
    try:
        yield kept
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _skipped(blocks: Sequence[nn.Module], first_layer: int, stream: object, copies: int) -> Iterator[None]:
    """Blocks before ``first_layer`` return ``stream`` (the kept output of block first_layer − 1, repeated
    for the stacked ``copies``) instead of computing; a no-op when ``stream`` is None."""
    if stream is None or first_layer == 0:
        yield
        return
    tiled = _tile(stream, copies)
    skipped = blocks[:first_layer]
    for block in skipped:
        block.forward = lambda *args, **kwargs: tiled
    try:
        yield
    finally:
        for block in skipped:
            del block.forward


def _tile(output: object, copies: int) -> object:
    """A block's output (a tensor, or a tuple whose first item is the hidden state) repeated along the batch."""
    if isinstance(output, torch.Tensor):
        return output.repeat(copies, *([1] * (output.dim() - 1)))
    if isinstance(output, tuple):
        return (_tile(output[0], copies), *output[1:])
    raise TypeError(f"cannot tile a block output of type {type(output).__name__}")
