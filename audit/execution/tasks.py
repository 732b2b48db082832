"""What one shard of each corpus-scale job computes, and how its state is kept on disk.

Three jobs share one shape — shards of text in, a small mergeable state per shard out:

* ``harvest``: one model's per-text aggregates (:class:`~audit.model.harvest.Activations`), placed by row;
* ``correlate``: the correlation sums between two models' neurons (:class:`CorrelationState`), added;
* ``contexts``: the top-k contexts of a few neurons plus a held-out text sample (:class:`ContextsState`),
  folded under a total order.

The local executor and the Ray workers run the same :func:`run_shard`, so where a shard ran never changes
its state.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..analysis.correlation import CorrelationState
from ..analysis.sample import HashSample
from ..analysis.topk import TopContexts
from ..model.cache import load, save
from ..model.contexts import top_contexts
from ..model.correlate import stream_correlation
from ..model.harvest import harvest
from ..model.loading import Model

KINDS = ("harvest", "correlate", "contexts")


@dataclass(frozen=True)
class Task:
    """A job's kind, its settings (plain JSON values) and which of the worker's models it runs (indices)."""

    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    models: tuple[int, ...] = (0,)


@dataclass
class ContextsState:
    """Top-k contexts of the tracked neurons and the bottom-k hash sample of the same texts."""

    top: TopContexts
    sample: HashSample

    def merge(self, other: ContextsState) -> ContextsState:
        self.top.merge(other.top)
        self.sample.merge(other.sample)
        return self


def run_shard(task: Task, models: Sequence[Model], payload: dict[str, Any]) -> Any:
    """One shard's state. ``payload``: ``texts`` and ``batches`` (harvest, correlate) or ``items``, the
    shard's (key, text) pairs (contexts)."""
    settings = task.settings
    if task.kind == "harvest":
        return harvest(models[0], payload["texts"], batches=payload["batches"], progress=False, **settings)
    if task.kind == "correlate":
        model_a, model_b = models
        state = CorrelationState([tuple(pair) for pair in settings["pairs"]], model_a.neurons_per_layer,
                                 model_b.neurons_per_layer, precision=settings["precision"])
        return stream_correlation(model_a, model_b, payload["texts"], state, batches=payload["batches"],
                                  align=settings["align"], batch_size=settings["batch_size"],
                                  max_length=settings["max_length"], stride=settings["stride"], progress=False)
    if task.kind == "contexts":
        items = payload["items"]
        top = top_contexts(models[0], items, [tuple(n) for n in settings["neurons"]], k=settings["k"],
                           batch_size=settings["batch_size"], max_length=settings["max_length"])
        sample = HashSample(k=settings["sample"], seed=settings["seed"])
        sample.add(items)
        return ContextsState(top, sample)
    raise ValueError(f"unknown task kind {task.kind!r}; expected one of {KINDS}")


def save_state(kind: str, state: Any, path: Path) -> None:
    """Write a shard's state atomically (``.npz`` for arrays, JSON for contexts)."""
    if kind == "harvest":
        save(state, path)
        return
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as stream:
        if kind == "correlate":
            stream.write(state.to_bytes())
        else:
            stream.write(json.dumps({"top": state.top.to_dict(), "sample": state.sample.to_dict()}).encode("utf-8"))
    os.replace(temporary, path)


def load_state(kind: str, path: Path) -> Any:
    if kind == "harvest":
        return load(path)
    if kind == "correlate":
        return CorrelationState.from_bytes(path.read_bytes())
    data = json.loads(path.read_text(encoding="utf-8"))
    return ContextsState(TopContexts.from_dict(data["top"]), HashSample.from_dict(data["sample"]))


SUFFIX = {"harvest": ".npz", "correlate": ".npz", "contexts": ".json"}
