"""A uniform random sample of a text stream that any split of the stream reproduces: bottom-k by hash.

Each text's key is hashed with the seed; the sample is the ``k`` texts with the smallest hashes. Which texts
win depends only on the keys and the seed, never on the order or the shards the stream arrived in, so two
shards' samples merge into exactly the sample of the whole stream (a reservoir sample, whose choices depend
on arrival order, cannot do that).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable


def _rank(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{key}".encode("utf-8"), digest_size=8).digest(), "big")


@dataclass
class HashSample:
    """The ``k`` (rank, key, text) entries with the smallest ranks seen so far, smallest first."""

    k: int
    seed: int = 0
    entries: list[tuple[int, str, str]] = field(default_factory=list)

    def add(self, items: Iterable[tuple[str, str]]) -> None:
        """Fold in (key, text) pairs."""
        self._keep(self.entries + [(_rank(self.seed, key), key, text) for key, text in items])

    def merge(self, other: HashSample) -> HashSample:
        """Fold in another shard's sample (same k and seed); returns self."""
        if (other.k, other.seed) != (self.k, self.seed):
            raise ValueError("can only merge samples with the same k and seed")
        self._keep(self.entries + other.entries)
        return self

    def _keep(self, entries: list[tuple[int, str, str]]) -> None:
        self.entries = sorted(set(entries))[:self.k]

    @property
    def texts(self) -> list[str]:
        return [text for _, _, text in self.entries]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "seed": self.seed, "entries": [list(entry) for entry in self.entries]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HashSample:
        return cls(k=int(data["k"]), seed=int(data["seed"]),
                   entries=[(int(rank), str(key), str(text)) for rank, key, text in data["entries"]])
