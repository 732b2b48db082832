"""Stream a corpus through two models at once and feed their neurons to a :class:`CorrelationState`.

Alignment: when both models tokenize every text into the same real tokens (same vocabulary, e.g. a model
and its fine-tune), samples are tokens — Gurnee et al.'s setting, and the only one in which a neuron's
per-token behaviour is compared. When the tokenizers differ, tokens have no common index, so samples are
texts: each neuron's mean over the text's real tokens. Word-aligned positions would keep more detail but
depend on each tokenizer's notion of a word (byte-level BPE, WordPiece and SentencePiece split and mark
words differently); the per-text mean is defined for any pair and is what the audit's own mean pooling uses.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..analysis.correlation import CorrelationState, Products
from ..config import ALIGNMENTS
from ..errors import AuditInputError
from .harvest import batch_plan, model_inputs, real_token_mask, tokenize
from .loading import Model
from .outputs import forward, warm_up


def same_tokenizer(model_a: Model, model_b: Model) -> bool:
    """Whether the two tokenizers share a vocabulary (the precondition for token-level alignment)."""
    try:
        return model_a.tokenizer.get_vocab() == model_b.tokenizer.get_vocab()
    except (AttributeError, NotImplementedError):
        return False


def resolve_alignment(model_a: Model, model_b: Model, align: str) -> str:
    """``tokens`` or ``texts`` for ``align`` (``auto`` picks tokens when the vocabularies are equal)."""
    if align not in ALIGNMENTS:
        raise AuditInputError(f"--align: expected one of {', '.join(ALIGNMENTS)}, got {align!r}")
    if align == "auto":
        return "tokens" if same_tokenizer(model_a, model_b) else "texts"
    return align


@dataclass(frozen=True)
class CorpusSurvey:
    """What the two models make of a corpus before it is correlated: the token length each really uses (its
    ``max_length`` within the model's own position limit), how many texts each truncates, and whether both
    read every text as the same real tokens (the precondition of token alignment)."""

    max_length: tuple[int, int]
    truncated: tuple[int, int]
    truncated_either: int
    same_tokens: bool


SURVEY_CHUNK = 512


def used_length(model: Model, max_length: int) -> int:
    """The token length ``model`` really reads texts at: ``max_length`` within its own position limit."""
    limit = model.max_positions
    return min(max_length, limit) if limit else max_length


def survey_corpus(model_a: Model, model_b: Model, texts: Sequence[str], max_length: int) -> CorpusSurvey:
    """Tokenize ``texts`` as both models will (truncated at each one's used length) and count truncations;
    ``same_tokens`` is False as soon as one text's real tokens differ (tokenizers, or truncation lengths)."""
    lengths = (used_length(model_a, max_length), used_length(model_b, max_length))
    cut: list[np.ndarray] = [np.zeros(len(texts), bool), np.zeros(len(texts), bool)]
    same = True
    for start in range(0, len(texts), SURVEY_CHUNK):
        chunk = list(texts[start:start + SURVEY_CHUNK])
        real = []
        for side, (model, length) in enumerate(zip((model_a, model_b), lengths)):
            encoded = model.tokenizer(chunk, truncation=True, max_length=length, return_special_tokens_mask=True)
            ids = [[i for i, special in zip(row, mask) if not special] or list(row)
                   for row, mask in zip(encoded["input_ids"], encoded["special_tokens_mask"])]
            real.append(ids)
            full = [k for k, row in enumerate(encoded["input_ids"]) if len(row) >= length]
            if full:
                whole = model.tokenizer([chunk[k] for k in full], truncation=False)["input_ids"]
                cut[side][[start + k for k in full]] = [len(row) > length for row in whole]
        same = same and real[0] == real[1]
    return CorpusSurvey(max_length=lengths, truncated=(int(cut[0].sum()), int(cut[1].sum())),
                        truncated_either=int((cut[0] | cut[1]).sum()), same_tokens=same)


class BFloat16Products(Products):
    """bfloat16 products on oneDNN: samples rounded to bfloat16, multiplied with float32 accumulation and
    output (``torch.backends.mkldnn.matmul.fp32_precision = "bf16"``), on AMX or AVX-512 BF16 units where the
    CPU has them. The inputs are already bfloat16 values, so a CPU without such units computes the same
    products in float32. Each product runs on one torch thread: oneDNN splits small products across threads
    by their inner dimension, which changes their bits with the number of threads."""

    _local = threading.local()

    def __init__(self) -> None:
        super().__init__("bfloat16")

    def centre(self, values: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._one_thread()
        source, target = torch.from_numpy(values), torch.from_numpy(out)
        mean = source.sum(0) / len(values)  # float32 (pairwise sums): only the shift the sums are taken around
        torch.sub(source, mean, out=target)
        half = getattr(self._local, "half", None)
        if half is None or half.numel() < target.numel():
            half = self._local.half = torch.empty(target.numel(), dtype=torch.bfloat16)
        rounded = half[:target.numel()].view(target.shape)
        rounded.copy_(target)
        target.copy_(rounded)
        return mean.double().numpy(), np.einsum("ij,ij->j", out, out, dtype=np.float64)

    @contextmanager
    def session(self) -> Iterator[None]:
        setting = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
        previous = getattr(setting, "fp32_precision", None)
        if previous is not None:
            setting.fp32_precision = "bf16"
        try:
            yield
        finally:
            if previous is not None:
                setting.fp32_precision = previous

    def multiply(self, left: np.ndarray, right: np.ndarray, out: np.ndarray) -> np.ndarray:
        self._one_thread()
        torch.mm(torch.from_numpy(left).T, torch.from_numpy(right), out=torch.from_numpy(out))
        return out

    def _one_thread(self) -> None:
        """torch's thread count is per OS thread under OpenMP; set once on each of the state's own threads."""
        if not getattr(self._local, "single", False):
            torch.set_num_threads(1)
            self._local.single = True


def products_for(state: CorrelationState) -> Products:
    """The fastest engine for ``state``'s precision."""
    return BFloat16Products() if state.precision == "bfloat16" else Products(state.precision)


FLUSH_BYTES = 192 * 2 ** 20  # float32 activations gathered before one large product (BLAS nears its peak
                             # from about 2,000 rows; the default model pair buffers 74 KB per token)
CHUNK_BATCHES = 16  # batches of the corpus plan per chunk; buffers also flush at every chunk's end


def stream_correlation(model_a: Model, model_b: Model, texts: Sequence[str], state: CorrelationState, *,
                       align: str = "tokens", batch_size: int = 32, max_length: int = 128, stride: int = 8,
                       progress: bool = True, batches: Sequence[np.ndarray] | None = None) -> CorrelationState:
    """Run ``texts`` through both models and add their activations to ``state`` (returned).

    ``align`` is ``tokens`` or ``texts`` (see the module docstring); in token mode the baseline subsample is
    every ``stride``-th real token of each text (by position, so shards of a corpus pick the same tokens).
    ``batches`` (rows per forward pass) replaces :func:`batch_plan`, for a shard of a larger corpus. Samples
    are buffered across batches and added to the state in large products; the buffer flushes when it holds
    ``FLUSH_BYTES`` or at the end of every ``CHUNK_BATCHES`` batches, and the sparse baseline samples gather
    over a whole chunk before their own products, so a shard made of whole chunks adds exactly the products
    an unsharded pass adds.
    """
    if align not in ("tokens", "texts"):
        raise ValueError(f"align must be tokens or texts, got {align!r}")
    plan = batch_plan(texts, batch_size, model=model_a, max_length=max_length) if batches is None else list(batches)
    hidden = not progress or not sys.stderr.isatty()
    row_bytes = 4 * (len(state.layers_a) * state.width_a + len(state.layers_b) * state.width_b)
    buffer = _Buffer(state, products_for(state), rows=FLUSH_BYTES // row_bytes + batch_size * max_length)
    with torch.inference_mode():
        warm_up()
        for number, rows in enumerate(tqdm(plan, desc="compare", unit="batch", disable=hidden, leave=False)):
            batch = [texts[i] for i in rows]
            real_a, ids_a = _activations(model_a, batch, max_length, state.layers_a, align, buffer.writer("a"))
            real_b, ids_b = _activations(model_b, batch, max_length, state.layers_b, align, buffer.writer("b"))
            if align == "tokens":
                if real_a.sum() != real_b.sum() or not torch.equal(ids_a[real_a], ids_b[real_b]):
                    raise AuditInputError("--align tokens: the two models tokenize the corpus differently; "
                                          "use --align texts (or auto)")
                position = real_a.cumsum(dim=1) - 1
                buffer.commit((position % stride == 0)[real_a].numpy())
            else:
                buffer.commit(np.ones(len(batch), dtype=bool))
            if buffer.nbytes >= FLUSH_BYTES or (number + 1) % CHUNK_BATCHES == 0:
                buffer.flush()
            if buffer.baseline_nbytes >= FLUSH_BYTES or (number + 1) % CHUNK_BATCHES == 0:
                buffer.flush_baseline()
    buffer.flush()
    buffer.flush_baseline()
    state.settle()  # up to date before it is returned, saved or sent (a received copy may be read-only)
    return state


class _Buffer:
    """The activations of a few batches in per-layer arrays that are reused from flush to flush (fresh
    arrays of this size cost as much in page faults as the products cost), added to the state at once; the
    baseline samples among them are copied aside at each flush and added once per chunk (a few hundred rows
    per flush would make small, slow products)."""

    def __init__(self, state: CorrelationState, products: Products, *, rows: int) -> None:
        self.state = state
        self.products = products
        self.capacity = rows  # reserved at once (untouched pages cost nothing); growing would copy
        self.arrays: dict[tuple[str, int], np.ndarray] = {}
        self.rows = 0
        self.subsample: list[np.ndarray] = []
        self.baseline: dict[tuple[str, int], np.ndarray] = {}
        self.baseline_rows = 0

    def writer(self, side: str) -> Callable[..., None]:
        """Where one model's forward pass puts a layer's samples (after the committed rows): ``values`` whole,
        or its rows at ``index`` (flattened over batch and position)."""
        def write(layer: int, values: torch.Tensor, index: torch.Tensor | None = None) -> None:
            width = values.shape[-1]
            count = len(values) if index is None else len(index)
            target = torch.from_numpy(self._reserve((side, layer), count, width)[self.rows:self.rows + count])
            if index is None:
                target.copy_(values)
            elif values.device.type == "cpu" and values.dtype == torch.float32:  # one copy, straight in
                torch.index_select(values.reshape(-1, width), 0, index, out=target)
            else:
                target.copy_(values.reshape(-1, width)[index.to(values.device)])
        return write

    def _reserve(self, key: tuple[str, int], count: int, width: int, *, baseline: bool = False) -> np.ndarray:
        arrays, rows = (self.baseline, self.baseline_rows) if baseline else (self.arrays, self.rows)
        array = arrays.get(key)
        if array is None or len(array) < rows + count:
            size = (self.capacity // 8 if baseline else self.capacity) if array is None else 2 * len(array)
            grown = np.empty((max(rows + count, size), width), np.float32)
            if array is not None:
                grown[:rows] = array[:rows]
            arrays[key] = array = grown
        return array

    def commit(self, subsample: np.ndarray) -> None:
        """The batch just written is complete; ``subsample`` marks its baseline samples."""
        self.rows += len(subsample)
        self.subsample.append(subsample)

    @property
    def nbytes(self) -> int:
        return self.rows * 4 * sum(array.shape[1] for array in self.arrays.values())

    @property
    def baseline_nbytes(self) -> int:
        return self.baseline_rows * 4 * sum(array.shape[1] for array in self.baseline.values())

    def flush(self) -> None:
        if not self.rows:
            return
        rows = np.concatenate(self.subsample)
        count = int(rows.sum())
        for key, array in self.arrays.items():
            aside = self._reserve(key, count, array.shape[1], baseline=True)
            np.compress(rows, array[:self.rows], axis=0, out=aside[self.baseline_rows:self.baseline_rows + count])
        self.baseline_rows += count
        self.state.add_samples({a: self.arrays[("a", a)][:self.rows] for a in self.state.layers_a},
                               {b: self.arrays[("b", b)][:self.rows] for b in self.state.layers_b},
                               products=self.products, overwrite=True)
        self.rows, self.subsample = 0, []

    def flush_baseline(self) -> None:
        if not self.baseline_rows:
            return
        self.state.add_baseline({a: self.baseline[("a", a)][:self.baseline_rows] for a in self.state.layers_a},
                                {b: self.baseline[("b", b)][:self.baseline_rows] for b in self.state.layers_b},
                                products=self.products, overwrite=True)
        self.baseline_rows = 0


def _activations(model: Model, texts: list[str], max_length: int, layers: list[int], align: str,
                 write: Callable[..., None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass each wanted layer's neurons per real token (token mode) or per text (mean over real tokens) to
    ``write``; returns the real-token mask and the token ids."""
    encoded = tokenize(model, texts, used_length(model, max_length))
    real = real_token_mask(encoded)
    wanted = set(layers)
    weights = (real / real.sum(dim=1, keepdim=True)).unsqueeze(1).to(model.device)
    index = real.reshape(-1).nonzero().squeeze(1)

    def read(layer: int, x: torch.Tensor) -> None:
        if layer not in wanted:
            return
        if align == "tokens":
            write(layer, x, index)
        else:
            write(layer, torch.bmm(weights.to(x.dtype), x)[:, 0])

    with model.sites.hooked(read):
        forward(model, model_inputs(model, encoded), outputs=False)
    return real, encoded["input_ids"]
