"""Streaming top-k contexts per neuron: a small, mergeable state over any number of texts.

For each tracked neuron it keeps the ``k`` texts where the neuron fires most, each at the token of that
text's maximum. One entry per (neuron, text) keeps a repeated phrase from filling a neuron's whole list.
Memory is bounded by k × neurons (values, positions, and the texts still referenced), never by the corpus.

The state is built for sharding: :meth:`TopContexts.update` folds in a batch, :meth:`TopContexts.merge`
folds in another shard, and the order is total (activation descending, then text key, then position), so
any split of a corpus merged back equals one pass over it. :meth:`to_dict`/:meth:`from_dict` are lossless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

NO_TEXT = ""  # key of an empty slot (a neuron seen on fewer than k texts)


@dataclass
class TopContexts:
    """The ``k`` strongest texts per tracked neuron: ``values``/``positions`` (neurons × k), text keys
    (neurons × k, ``NO_TEXT`` for empty slots) and the referenced texts by key."""

    neurons: list[tuple[int, int]]
    k: int
    values: np.ndarray = field(default=None)  # type: ignore[assignment]
    positions: np.ndarray = field(default=None)  # type: ignore[assignment]
    keys: np.ndarray = field(default=None)  # type: ignore[assignment]
    texts: dict[str, str] = field(default_factory=dict)
    seen: int = 0  # texts folded in

    def __post_init__(self) -> None:
        self.neurons = [(int(a), int(b)) for a, b in self.neurons]
        if not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"The 'k' parameter must be an int >= 1. Got {self.k!r} instead.")
        shape = (len(self.neurons), self.k)
        if self.values is None:
            self.values = np.full(shape, -np.inf, np.float32)
            self.positions = np.zeros(shape, np.int64)
            self.keys = np.full(shape, NO_TEXT, dtype=object)

    def update(self, keys: Sequence[str], texts: Sequence[str], maxima: np.ndarray, positions: np.ndarray) -> None:
        """Fold in a batch: per text (rows) and tracked neuron (columns), its max activation and where."""
        maxima = np.asarray(maxima, np.float32)
        if maxima.shape != (len(keys), len(self.neurons)) or np.shape(positions) != maxima.shape:
            raise ValueError(f"expected maxima and positions shaped {(len(keys), len(self.neurons))}, "
                             f"got {maxima.shape} and {np.shape(positions)}")
        batch = np.array(list(keys), dtype=object)
        self._fold(maxima.T, np.asarray(positions, np.int64).T, np.broadcast_to(batch, maxima.T.shape),
                   dict(zip(keys, texts)))
        self.seen += len(keys)

    def merge(self, other: TopContexts) -> TopContexts:
        """Fold in another shard's state (same neurons and k); returns self."""
        if other.neurons != self.neurons or other.k != self.k:
            raise ValueError("can only merge top-k states over the same neurons and k")
        self._fold(other.values, other.positions, other.keys, other.texts)
        self.seen += other.seen
        return self

    def _fold(self, values: np.ndarray, positions: np.ndarray, keys: np.ndarray, texts: dict[str, str]) -> None:
        values = np.concatenate([self.values, values], axis=1)
        positions = np.concatenate([self.positions, positions], axis=1)
        keys = np.concatenate([self.keys, keys], axis=1)
        for row in range(values.shape[0]):
            chosen = _candidates(values[row], keys[row], positions[row], self.k)
            self.values[row], self.positions[row], self.keys[row] = (values[row, chosen], positions[row, chosen],
                                                                     keys[row, chosen])
        self.texts.update(texts)
        live = set(self.keys.ravel().tolist()) - {NO_TEXT}
        self.texts = {key: text for key, text in self.texts.items() if key in live}

    def contexts(self, index: int) -> list[dict[str, Any]]:
        """The filled entries of tracked neuron ``index``, strongest first: key, text, position, activation."""
        return [{"key": key, "text": self.texts[key], "position": int(pos), "activation": float(value)}
                for value, pos, key in zip(self.values[index], self.positions[index], self.keys[index])
                if key != NO_TEXT]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (float32 values survive a float64 JSON round trip exactly)."""
        return {"neurons": [list(n) for n in self.neurons], "k": self.k, "seen": self.seen,
                "values": [[None if not np.isfinite(v) else float(v) for v in row] for row in self.values],
                "positions": self.positions.tolist(), "keys": self.keys.tolist(), "texts": dict(self.texts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TopContexts:
        values = np.array([[-np.inf if v is None else v for v in row] for row in data["values"]], np.float32)
        keys = np.empty(values.shape, dtype=object)
        keys[...] = data["keys"] if values.size else keys
        return cls(neurons=[tuple(n) for n in data["neurons"]], k=int(data["k"]), values=values,
                   positions=np.array(data["positions"], np.int64).reshape(values.shape), keys=keys,
                   texts=dict(data["texts"]), seen=int(data["seen"]))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TopContexts) and self.neurons == other.neurons and self.k == other.k
                and self.seen == other.seen and np.array_equal(self.values, other.values)
                and np.array_equal(self.positions, other.positions) and np.array_equal(self.keys, other.keys)
                and self.texts == other.texts)


def _candidates(values: np.ndarray, keys: np.ndarray, positions: np.ndarray, k: int) -> list[int]:
    """Indices of the k best entries under the total order (activation descending, then key, then position;
    empty slots last), without sorting every column."""
    finite = np.where(np.isfinite(values), values, -np.inf)
    if len(finite) > 4 * k:  # prefilter: anything strictly below the k-th largest value cannot win
        cutoff = np.partition(finite, len(finite) - k)[len(finite) - k]
        pool = np.flatnonzero(finite >= cutoff)
    else:
        pool = np.arange(len(finite))
    return sorted(pool.tolist(), key=lambda i: (-values[i], keys[i] == NO_TEXT, keys[i], positions[i]))[:k]
