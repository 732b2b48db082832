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
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..analysis.correlation import CorrelationState
from ..config import ALIGNMENTS
from ..errors import AuditInputError
from .harvest import batch_plan, model_inputs, real_token_mask, tokenize
from .loading import Model
from .outputs import forward


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


FLUSH_BYTES = 192 * 2 ** 20  # float32 activations gathered before one large product (BLAS nears its peak
                             # from about 2,000 rows; the default model pair buffers 74 KB per token)
CHUNK_BATCHES = 8  # batches of the corpus plan per chunk; buffers also flush at every chunk's end


def stream_correlation(model_a: Model, model_b: Model, texts: Sequence[str], state: CorrelationState, *,
                       align: str = "tokens", batch_size: int = 32, max_length: int = 128, stride: int = 8,
                       progress: bool = True, batches: Sequence[np.ndarray] | None = None) -> CorrelationState:
    """Run ``texts`` through both models and add their activations to ``state`` (returned).

    ``align`` is ``tokens`` or ``texts`` (see the module docstring); in token mode the baseline subsample is
    every ``stride``-th real token of each text (by position, so shards of a corpus pick the same tokens).
    ``batches`` (rows per forward pass) replaces :func:`batch_plan`, for a shard of a larger corpus. Samples
    are buffered across batches and added to the state in large products; a buffer flushes when it holds
    ``FLUSH_BYTES`` or at the end of every ``CHUNK_BATCHES`` batches, so a shard made of whole chunks adds
    exactly the products an unsharded pass adds.
    """
    if align not in ("tokens", "texts"):
        raise ValueError(f"align must be tokens or texts, got {align!r}")
    plan = batch_plan(texts, batch_size) if batches is None else list(batches)
    hidden = not progress or not sys.stderr.isatty()
    buffer = _Buffer(state)
    with torch.inference_mode():
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
    buffer.flush()
    state.settle()  # up to date before it is returned, saved or sent (a received copy may be read-only)
    return state


class _Buffer:
    """The activations of a few batches in per-layer arrays that are reused from flush to flush (fresh
    arrays of this size cost as much in page faults as the products cost), added to the state at once."""

    def __init__(self, state: CorrelationState) -> None:
        self.state = state
        self.arrays: dict[tuple[str, int], np.ndarray] = {}
        self.rows = 0
        self.subsample: list[np.ndarray] = []

    def writer(self, side: str) -> Callable[[int, torch.Tensor], None]:
        """Where one model's forward pass puts a layer's samples (after the committed rows)."""
        def write(layer: int, values: torch.Tensor) -> None:
            array = self._reserve((side, layer), len(values), values.shape[1])
            torch.from_numpy(array[self.rows:self.rows + len(values)]).copy_(values)
        return write

    def _reserve(self, key: tuple[str, int], count: int, width: int) -> np.ndarray:
        array = self.arrays.get(key)
        if array is None or len(array) < self.rows + count:
            grown = np.empty((max(self.rows + count, 2 * (0 if array is None else len(array))), width), np.float32)
            if array is not None:
                grown[:self.rows] = array[:self.rows]
            self.arrays[key] = array = grown
        return array

    def commit(self, subsample: np.ndarray) -> None:
        """The batch just written is complete; ``subsample`` marks its baseline samples."""
        self.rows += len(subsample)
        self.subsample.append(subsample)

    @property
    def nbytes(self) -> int:
        return self.rows * 4 * sum(array.shape[1] for array in self.arrays.values())

    def flush(self) -> None:
        if not self.rows:
            return
        rows = np.concatenate(self.subsample)
        self.state.update({a: self.arrays[("a", a)][:self.rows] for a in self.state.layers_a},
                          {b: self.arrays[("b", b)][:self.rows] for b in self.state.layers_b},
                          None if rows.all() else rows)
        self.rows, self.subsample = 0, []


def _activations(model: Model, texts: list[str], max_length: int, layers: list[int], align: str,
                 write: Callable[[int, torch.Tensor], None]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pass each wanted layer's neurons per real token (token mode) or per text (mean over real tokens) to
    ``write``; returns the real-token mask and the token ids."""
    limit = model.max_positions
    encoded = tokenize(model, texts, min(max_length, limit) if limit else max_length)
    real = real_token_mask(encoded)
    wanted = set(layers)
    weights = (real / real.sum(dim=1, keepdim=True)).unsqueeze(1).to(model.device)
    mask = real.to(model.device)

    def read(layer: int, x: torch.Tensor) -> None:
        if layer in wanted:
            write(layer, x[mask] if align == "tokens" else torch.bmm(weights.to(x.dtype), x)[:, 0])

    with model.sites.hooked(read):
        forward(model, model_inputs(model, encoded), outputs=False)
    return real, encoded["input_ids"]
