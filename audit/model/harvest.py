"""Harvest: one batched forward pass over a text list, reading every neuron of every layer.

Per text and neuron it keeps the max and mean over real tokens (padding and special tokens excluded; a causal
LM reads each text after its prefix token, which is special too);
optionally, per neuron, running token moments (for density and kurtosis). Nothing else is kept, so memory
beyond the per-text aggregates does not grow with the number of tokens. Token-level detail for the few
texts a report shows comes from :func:`token_traces`, a small second pass over just those texts.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..analysis.resident import release
from ..config import POOLINGS
from ..errors import expected
from .loading import Model
from .encoding import encode, token_counts
from .gates import gate_hooks
from .outputs import allocate, forward, summarize, warm_up


RELEASE_BYTES = 256 << 20  # spilled aggregates: drop written pages from the resident set this often


@dataclass
class Activations:
    """Per-text aggregates, arrays shaped (texts, layers, neurons), and optional token moments per neuron."""

    max: np.ndarray
    mean: np.ndarray
    n_tokens: np.ndarray  # real tokens per text after truncation (special tokens excluded)
    truncated: np.ndarray  # bool per text: longer than max_length
    token_count: int  # real tokens seen in all
    max_length: int
    moments: np.ndarray | None = None  # (4, layers, neurons) float64: sums of x, x², x³, x⁴ over real tokens
    positive: np.ndarray | None = None  # (layers, neurons): real tokens with activation > 0
    active: np.ndarray | None = None  # (layers, neurons): real tokens with act(gate) > 0 (LAPE's count)
    outputs: dict[str, np.ndarray] | None = None  # per-text summaries of the model's outputs (see outputs.py)

    def pooled(self, pooling: str = "max") -> np.ndarray:
        """Responses as (texts, layers × neurons), the layout the analyses take."""
        if pooling not in POOLINGS:
            raise expected("pooling", f"one of {POOLINGS}", pooling)
        values = self.max if pooling == "max" else self.mean
        return values.reshape(values.shape[0], -1)

    def token_stats(self) -> dict[str, np.ndarray]:
        """Per-neuron token-level mean, std, density (share > 0) and excess kurtosis, each (layers, neurons)."""
        if self.moments is None or self.positive is None:
            raise ValueError("token moments were not collected; harvest with token_moments=True")
        n = max(self.token_count, 1)
        m1, m2, m3, m4 = (self.moments[i] / n for i in range(4))
        var = np.maximum(m2 - m1**2, 0.0)
        central4 = m4 - 4 * m1 * m3 + 6 * m1**2 * m2 - 3 * m1**4
        with np.errstate(divide="ignore", invalid="ignore"):
            kurtosis = np.where(var > 1e-12, central4 / var**2 - 3.0, 0.0)
        return {"mean": m1, "std": np.sqrt(var), "density": self.positive / n, "kurtosis": kurtosis}


def assemble(n_texts: int, parts: Sequence[tuple[np.ndarray, Activations]]) -> Activations:
    """One harvest from shard harvests: ``parts`` pairs each shard's rows (into the full text list) with its
    harvest, in shard order. Per-text values are placed by row (exact); token moments and counts are summed
    in shard order, so a given shard plan always gives the same bits."""
    if not parts:
        raise ValueError("no shard harvests to assemble")
    first = parts[0][1]
    layers, neurons = first.max.shape[1:]
    out = Activations(max=_empty((n_texts, layers, neurons)), mean=_empty((n_texts, layers, neurons)),
                      n_tokens=np.zeros(n_texts, np.int64), truncated=np.zeros(n_texts, bool), token_count=0,
                      max_length=first.max_length,
                      moments=np.zeros_like(first.moments) if first.moments is not None else None,
                      positive=np.zeros_like(first.positive) if first.positive is not None else None,
                      active=np.zeros_like(first.active) if first.active is not None else None,
                      outputs={key: np.zeros((n_texts, *values.shape[1:]), values.dtype)
                               for key, values in first.outputs.items()} if first.outputs is not None else None)
    covered = np.zeros(n_texts, bool)
    for rows, part in parts:
        out.max[rows], out.mean[rows] = part.max, part.mean
        out.n_tokens[rows], out.truncated[rows] = part.n_tokens, part.truncated
        out.token_count += part.token_count
        covered[rows] = True
        if out.moments is not None:
            out.moments += part.moments
            out.positive += part.positive
        if out.active is not None:
            out.active += part.active
        for key, values in (part.outputs or {}).items():
            out.outputs[key][rows] = values
    if not covered.all():
        raise ValueError(f"shard harvests cover {int(covered.sum())} of {n_texts} texts")
    return out


@dataclass
class _Batch:
    """What the layer hook needs to know about the batch in flight, and where it leaves its results.

    The hook writes each layer's aggregates into ``max``/``mean`` (batch × layers × neurons) on the device;
    they are copied to the host once per batch, so the device is never synchronised layer by layer.
    """

    mean_weights: torch.Tensor  # (batch, 1, tokens): 1/n on real tokens, 0 elsewhere
    max_bias: torch.Tensor  # (batch, tokens, 1): 0 on real tokens, −inf on padding/special positions
    real: torch.Tensor  # (batch, tokens, 1) float: 1 on real tokens, 0 elsewhere
    max: torch.Tensor
    mean: torch.Tensor


class _HostCopies:
    """Per-batch device → host copies of the aggregates: non-blocking into pinned buffers on CUDA, each
    scattered into the output arrays only when the next batch has been queued (one sync per batch)."""

    def __init__(self, out: Activations) -> None:
        self.out = out
        self.pending: tuple[np.ndarray, torch.Tensor, torch.Tensor, Any] | None = None

    def push(self, rows: np.ndarray, batch: _Batch) -> None:
        cuda = batch.max.device.type == "cuda"
        if cuda:
            host_max = torch.empty(batch.max.shape, dtype=batch.max.dtype, pin_memory=True)
            host_mean = torch.empty(batch.mean.shape, dtype=batch.mean.dtype, pin_memory=True)
            host_max.copy_(batch.max, non_blocking=True)
            host_mean.copy_(batch.mean, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host_max, host_mean, event = batch.max, batch.mean, None
        self.flush()
        self.pending = (rows, host_max, host_mean, event)

    def flush(self) -> None:
        if self.pending is None:
            return
        rows, host_max, host_mean, event = self.pending
        if event is not None:
            event.synchronize()
        self.out.max[rows] = host_max.numpy()
        self.out.mean[rows] = host_mean.numpy()
        self.pending = None


def tokenize(model: Model, texts: Sequence[str], max_length: int, **extra: Any) -> dict[str, Any]:
    """Tokenize a batch the way harvest and traces both see it (right padding, truncation; causal LMs read
    each text after the model's prefix token, marked special — see :mod:`audit.model.encoding`)."""
    return encode(model, texts, max_length, **extra)


def real_token_mask(encoded: dict[str, Any]) -> torch.Tensor:
    """Positions holding real tokens: attended and not special (a text of special tokens only keeps them)."""
    attended = encoded["attention_mask"].bool()
    real = attended & ~encoded["special_tokens_mask"].bool()
    empty = real.sum(dim=1, keepdim=True) == 0
    return torch.where(empty, attended, real)


def model_inputs(model: Model, encoded: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors the model's forward takes, on its device."""
    return {k: v.to(model.device) for k, v in encoded.items()
            if k not in ("special_tokens_mask", "offset_mapping")}


def sentence_embeddings(model: Model, texts: Sequence[str], *, batch_size: int = 32,
                        max_length: int = 128) -> np.ndarray:
    """Encoders: each text's pooled sentence embedding, computed as :func:`harvest` computes its outputs."""
    found = allocate(model, len(texts))["embedding"]
    with torch.inference_mode():
        for rows in batch_plan(texts, batch_size, model=model, max_length=max_length):
            encoded = tokenize(model, [texts[i] for i in rows], max_length)
            inputs = model_inputs(model, encoded)
            found[rows] = summarize(model, inputs, forward(model, inputs, outputs=True))["embedding"]
    return found


def batch_plan(texts: Sequence[str], batch_size: int, *, model: Model | None = None,
               max_length: int = 128) -> list[np.ndarray]:
    """The rows of each forward batch: similar lengths share a batch (less padding). With ``model``, the
    lengths are its token counts (cut at ``max_length``): characters are a poor stand-in across scripts
    (SmolLM2's 1,000 reference lines in 8 languages, 38,975 real tokens, padded to 75,200 positions in batches
    of 32 sorted by characters and to 40,336 sorted by tokens). Without, characters stand in. Sharded runs
    cut this plan between batches, so every text meets the same batch, padding included, however the work
    is split."""
    order = np.argsort(text_lengths(texts, model=model, max_length=max_length), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def text_lengths(texts: Sequence[str], *, model: Model | None = None, max_length: int = 128) -> np.ndarray:
    """What :func:`batch_plan` sorts by: ``model``'s token counts cut at ``max_length``, else characters."""
    if model is None:
        return np.fromiter(map(len, texts), np.int64, len(texts))
    return np.minimum(np.asarray(token_counts(model, texts), dtype=np.int64).reshape(-1), max_length)


def harvest(model: Model, texts: Sequence[str], *, batch_size: int = 32, max_length: int = 128,
            token_moments: bool = False, outputs: bool = False, active_counts: bool = False, progress: bool = True,
            description: str = "harvest", batches: Sequence[np.ndarray] | None = None,
            memory_budget_mb: int | None = None) -> Activations:
    """Run ``texts`` through ``model`` once and aggregate every neuron of every layer.

    ``token_moments`` also keeps per-neuron token moments (density, kurtosis); ``outputs`` also keeps
    per-text summaries of the model's own outputs (log-likelihood or sentence embedding) from the same pass;
    ``active_counts`` counts, per neuron, the real tokens its ``act(gate)`` is > 0 on (LAPE's count, see
    :mod:`audit.model.gates`).
    ``batches`` (rows of ``texts`` per forward pass) replaces :func:`batch_plan`, for shards of a larger plan.
    Aggregates larger than ``memory_budget_mb`` live in a memory-mapped temporary file instead of RAM (the
    analyses read them in blocks), so the resident size stays near the budget however many texts there are.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise expected("The 'batch_size' parameter", "an int >= 1", batch_size)
    if not isinstance(max_length, int) or max_length < 2:
        raise expected("The 'max_length' parameter", "an int >= 2", max_length)
    n_texts, n_layers, n_neurons = len(texts), model.n_layers, model.neurons_per_layer
    shape = (n_texts, n_layers, n_neurons)
    spill = memory_budget_mb is not None and 2 * 4 * int(np.prod(shape)) > memory_budget_mb << 20
    allocate_aggregate = _spilled if spill else _empty
    out = Activations(max=allocate_aggregate(shape), mean=allocate_aggregate(shape),
                      n_tokens=np.zeros(n_texts, np.int64), truncated=np.zeros(n_texts, bool), token_count=0,
                      max_length=max_length,
                      moments=np.zeros((4, n_layers, n_neurons)) if token_moments else None,
                      positive=np.zeros((n_layers, n_neurons)) if token_moments else None,
                      active=np.zeros((n_layers, n_neurons)) if active_counts else None,
                      outputs=allocate(model, n_texts) if outputs else None)
    batch: list[_Batch] = []
    moments = positive = None
    if token_moments:  # accumulated on the device, copied once at the end
        moments = torch.zeros((4, n_layers, n_neurons), dtype=torch.float64, device=model.device)
        positive = torch.zeros((n_layers, n_neurons), dtype=torch.float64, device=model.device)
    active = torch.zeros((n_layers, n_neurons), dtype=torch.float64, device=model.device) if active_counts else None

    def count_active(layer: int, x: torch.Tensor) -> None:
        active[layer] += ((x > 0) & batch[0].real.to(x.device).bool()).sum((0, 1)).to(torch.float64)

    def read(layer: int, x: torch.Tensor) -> None:
        current = batch[0]
        current.mean[:, layer] = torch.bmm(current.mean_weights.to(x.device, x.dtype), x)[:, 0].to(
            current.mean.device, non_blocking=True)
        # an additive 0/−inf bias masks padding and special tokens (measured 3× faster than masked_fill)
        current.max[:, layer] = (x + current.max_bias.to(x.device, x.dtype)).amax(dim=1).to(
            current.max.device, non_blocking=True)
        if moments is not None:
            real = current.real.to(x.device)
            tokens = x.double() * real  # padding rows become 0 and add nothing to any power sum
            squared = tokens * tokens
            sums = torch.stack([tokens.sum((0, 1)), squared.sum((0, 1)), (squared * tokens).sum((0, 1)),
                                (squared * squared).sum((0, 1))])
            moments[:, layer] += sums.to(moments.device, non_blocking=True)
            positive[layer] += ((x > 0) & real.bool()).sum((0, 1)).to(positive.device, torch.float64,
                                                                       non_blocking=True)
        if active is not None and not gated:
            count_active(layer, x)

    copies = _HostCopies(out)
    device = model.device
    if batches is None:
        batches = batch_plan(texts, batch_size, model=model, max_length=max_length)
    release_every = max(1, RELEASE_BYTES // (batch_size * 8 * n_layers * n_neurons))
    with (torch.inference_mode(), model.sites.hooked(read),
          gate_hooks(model, count_active) if active is not None else contextlib.nullcontext(False) as gated):
        warm_up()
        hidden = not progress or not sys.stderr.isatty()
        for index, rows in enumerate(tqdm(batches, desc=description, unit="batch", disable=hidden, leave=False)):
            batch_texts = [texts[i] for i in rows]
            encoded = tokenize(model, batch_texts, max_length)
            full = encoded["attention_mask"].sum(dim=1) == max_length  # maybe truncated: check those only
            if bool(full.any()):
                candidates = full.nonzero()[:, 0].tolist()
                lengths = _token_lengths(model, [batch_texts[i] for i in candidates])
                out.truncated[rows[candidates]] = lengths > max_length
            real = real_token_mask(encoded)
            counts = real.sum(dim=1)
            out.n_tokens[rows] = counts.numpy()
            out.token_count += int(counts.sum())
            weights = (real / counts[:, None]).unsqueeze(1)
            max_bias = torch.zeros(real.shape).masked_fill(~real, float("-inf")).unsqueeze(-1)
            shape = (len(rows), n_layers, n_neurons)
            batch[:] = [_Batch(mean_weights=weights.to(device, non_blocking=True),
                               max_bias=max_bias.to(device, non_blocking=True),
                               real=real.unsqueeze(-1).float().to(device, non_blocking=True),
                               max=torch.empty(shape, device=device), mean=torch.empty(shape, device=device))]
            inputs = model_inputs(model, encoded)
            result = forward(model, inputs, outputs=outputs)
            copies.push(rows, batch[0])
            if out.outputs is not None:
                for key, values in summarize(model, inputs, result).items():
                    out.outputs[key][rows] = values
            if spill and (index + 1) % release_every == 0:  # keep written pages out of the resident set
                copies.flush()
                release(out.max)
                release(out.mean)
        copies.flush()
    if moments is not None:
        out.moments[:] = moments.cpu().numpy()
        out.positive[:] = positive.cpu().numpy()
    if active is not None:
        out.active[:] = active.cpu().numpy()
    if spill:
        out.max, out.mean = _column_major(out.max), _column_major(out.mean)
    return out


def _column_major(array: np.ndarray) -> np.ndarray:
    """The same (texts, layers, neurons) values in a new spilled file laid out neuron by neuron, so the
    analyses' blocks of neurons read contiguous pages. Read by columns, a row-major file is mapped whole: the
    kernel maps whole page-cache folios around every page touched, and a text's row spans few of them."""
    n_texts, n_layers, n_neurons = array.shape
    storage = _spilled((n_layers, n_neurons, n_texts))
    step = max(1, RELEASE_BYTES // (4 * n_layers * n_neurons))
    for start in range(0, n_texts, step):
        storage[:, :, start:start + step] = np.moveaxis(array[start:start + step], 0, 2)
        release(array)
        release(storage)
    return storage.transpose(2, 0, 1)


def _empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float32 array from torch's allocator, which backs large blocks with huge pages where
    the kernel allows: first writes then fault far fewer pages than numpy's own allocation (measured ~10×)."""
    return torch.empty(shape, dtype=torch.float32).numpy()


def _spilled(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 array backed by an unlinked temporary file: pages go to disk under memory pressure instead of
    growing the process, and the file disappears with the array (or the process, however it ends)."""
    with tempfile.TemporaryFile(prefix="neuron-audit-aggregates-") as handle:
        handle.truncate(4 * int(np.prod(shape)))
        return np.memmap(handle, dtype=np.float32, mode="r+", shape=shape)


def _token_lengths(model: Model, texts: Sequence[str]) -> np.ndarray:
    """Untruncated token counts, special tokens (and a causal LM's prefix) included."""
    return np.array(token_counts(model, texts), np.int64)


def token_traces(model: Model, texts: Sequence[str], neurons: Sequence[tuple[int, int]], *,
                 max_length: int = 128) -> list[dict[str, Any]]:
    """Per-token activations of a few ``neurons`` ((layer, index) pairs) on a few texts.

    For each text: its real tokens, their character spans, and an array (tokens × neurons).
    """
    wanted: dict[int, list[int]] = {}
    for column, (layer, _) in enumerate(neurons):
        wanted.setdefault(layer, []).append(column)
    index = {layer: torch.tensor([neurons[c][1] for c in columns]) for layer, columns in wanted.items()}
    encoded = tokenize(model, texts, max_length, return_offsets_mapping=True)
    real = real_token_mask(encoded)
    values = torch.zeros(*real.shape, len(neurons))

    def read(layer: int, x: torch.Tensor) -> None:
        if layer in index:
            values[:, :, wanted[layer]] = x[:, :, index[layer].to(x.device)].float().cpu()

    with torch.inference_mode(), model.sites.hooked(read):
        forward(model, model_inputs(model, encoded), outputs=False)
    traces = []
    for row in range(len(texts)):
        keep = real[row].nonzero()[:, 0]
        ids = encoded["input_ids"][row][keep].tolist()
        traces.append({"tokens": model.tokenizer.convert_ids_to_tokens(ids),
                       "spans": encoded["offset_mapping"][row][keep].tolist(),
                       "activations": values[row, keep].numpy()})
    return traces


def exemplars(model: Model, texts: Sequence[str], acts: Activations, layer: int, neuron: int,
              *, k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` texts where a neuron fires most, each with the token at its max: its position among the
    text's real tokens, its character span, and every real token's activation (for highlighting)."""
    top = np.argsort(-acts.max[:, layer, neuron], kind="stable")[:k]
    traces = token_traces(model, [texts[i] for i in top], [(layer, neuron)], max_length=acts.max_length)
    found = []
    for text_index, trace in zip(top, traces):
        values = trace["activations"][:, 0]
        at = int(values.argmax())
        start, end = trace["spans"][at]
        found.append({"text_index": int(text_index), "text": texts[text_index], "position": at,
                      "token": trace["tokens"][at],
                      "char_start": int(start), "char_end": int(end),
                      "activation": float(acts.max[text_index, layer, neuron]),
                      "token_activations": [round(float(v), 4) for v in values],
                      "token_spans": [[int(s), int(e)] for s, e in trace["spans"]]})
    return found
