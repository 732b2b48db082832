"""Shard plans: the harvest's length-sorted batches, grouped into shards of whole batches."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..model.harvest import batch_plan
from ..model.loading import Model


@dataclass(frozen=True)
class Shard:
    """One unit of work: the rows of the full text list it covers and its forward batches (shard-relative)."""

    id: int
    rows: np.ndarray
    batches: tuple[np.ndarray, ...]

    def texts(self, texts: Sequence[str]) -> list[str]:
        return [texts[i] for i in self.rows]


def shard_plan(texts: Sequence[str], *, batch_size: int, shard_size: int, model: Model | None = None,
               max_length: int = 128) -> list[Shard]:
    """Cut the harvest's batch plan into shards of about ``shard_size`` texts (whole batches each).

    The batches are those of an unsharded harvest (the same ``model`` and ``max_length``), so per-text
    results are bit-identical to it.
    """
    batches = batch_plan(texts, batch_size, model=model, max_length=max_length)
    per_shard = max(1, math.ceil(shard_size / batch_size))
    shards = []
    for number, start in enumerate(range(0, len(batches), per_shard)):
        group = batches[start:start + per_shard]
        rows = np.concatenate(group) if group else np.zeros(0, np.int64)
        offsets = np.cumsum([0, *(len(b) for b in group)])
        relative = tuple(np.arange(offsets[i], offsets[i + 1]) for i in range(len(group)))
        shards.append(Shard(id=number, rows=rows, batches=relative))
    return shards
