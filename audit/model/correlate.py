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
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..analysis.correlation import CorrelationState
from ..config import ALIGNMENTS
from ..errors import AuditInputError
from .harvest import model_inputs, real_token_mask, tokenize
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


def stream_correlation(model_a: Model, model_b: Model, texts: Sequence[str], state: CorrelationState, *,
                       align: str = "tokens", batch_size: int = 32, max_length: int = 128, stride: int = 8,
                       progress: bool = True) -> CorrelationState:
    """Run ``texts`` through both models and add every batch to ``state`` (returned).

    ``align`` is ``tokens`` or ``texts`` (see the module docstring); in token mode the baseline subsample is
    every ``stride``-th real token of each text (by position, so shards of a corpus pick the same tokens).
    """
    if align not in ("tokens", "texts"):
        raise ValueError(f"align must be tokens or texts, got {align!r}")
    order = np.argsort(np.fromiter(map(len, texts), np.int64, len(texts)), kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(texts), batch_size)]
    hidden = not progress or not sys.stderr.isatty()
    with torch.inference_mode():
        for rows in tqdm(batches, desc="compare", unit="batch", disable=hidden, leave=False):
            batch = [texts[i] for i in rows]
            xs, real_a, ids_a = _activations(model_a, batch, max_length, state.layers_a, align)
            ys, real_b, ids_b = _activations(model_b, batch, max_length, state.layers_b, align)
            if align == "tokens":
                if real_a.sum() != real_b.sum() or not torch.equal(ids_a[real_a], ids_b[real_b]):
                    raise AuditInputError("--align tokens: the two models tokenize the corpus differently; "
                                          "use --align texts (or auto)")
                position = real_a.cumsum(dim=1) - 1
                subsample = (position % stride == 0)[real_a].numpy()
            else:
                subsample = None
            state.update(xs, ys, subsample)
    return state


def _activations(model: Model, texts: list[str], max_length: int, layers: list[int],
                 align: str) -> tuple[dict[int, np.ndarray], torch.Tensor, torch.Tensor]:
    """Each wanted layer's neurons per real token (token mode) or per text (mean over real tokens)."""
    limit = model.max_positions
    encoded = tokenize(model, texts, min(max_length, limit) if limit else max_length)
    real = real_token_mask(encoded)
    wanted = set(layers)
    weights = (real / real.sum(dim=1, keepdim=True)).unsqueeze(1).to(model.device)
    mask = real.to(model.device)
    found: dict[int, np.ndarray] = {}

    def read(layer: int, x: torch.Tensor) -> None:
        if layer in wanted:
            values = x[mask] if align == "tokens" else torch.bmm(weights.to(x.dtype), x)[:, 0]
            found[layer] = values.float().cpu().numpy()

    with model.sites.hooked(read):
        forward(model, model_inputs(model, encoded), outputs=False)
    return found, real, encoded["input_ids"]
