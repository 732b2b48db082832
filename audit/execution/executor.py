"""The executor interface and the local executor: harvest a text list, sharded or whole, resumable.

An executor turns (model, texts, harvest settings) into one :class:`~audit.model.harvest.Activations`.
Sharded, it runs the shards of :func:`~audit.execution.plan.shard_plan`, keeps each finished shard's state
in the run's :class:`~audit.execution.state.JobState` (when there is one), skips shards already there, and
merges every shard exactly once in shard-id order — so the result does not depend on where or in which
order the shards ran.
"""

from __future__ import annotations

import sys
from typing import Any, Iterator, Sequence

from tqdm.auto import tqdm

from ..model.harvest import Activations, assemble, harvest
from ..model.loading import Model
from . import faults
from .plan import Shard, shard_plan
from .state import JobState


class Executor:
    """Runs harvests; subclasses say where the shards run (:meth:`run_shards`)."""

    name = "local"

    def __init__(self, *, shard_size: int | None = None, progress: bool = True) -> None:
        self.shard_size = shard_size
        self.progress = progress
        self.resumed_shards = 0  # shard states read back from an interrupted run

    @property
    def workers(self) -> int:
        return 1

    def describe(self) -> dict[str, Any]:
        """Where the run's corpus-scale work ran, for the run's provenance."""
        return {"executor": self.name, "workers": self.workers, "shard_size": self.shard_size,
                "resumed_shards": self.resumed_shards}

    def harvest(self, model: Model, texts: Sequence[str], *, settings: dict[str, Any], description: str,
                job: JobState | None = None) -> Activations:
        """Harvest ``texts`` (``settings``: batch_size, max_length, token_moments, outputs)."""
        if self.shard_size is None:
            return harvest(model, texts, progress=self.progress, description=description, **settings)
        shards = shard_plan(texts, batch_size=settings["batch_size"], shard_size=self.shard_size)
        parts: dict[int, Activations] = {}
        if job is not None:
            parts = {shard_id: job.load(shard_id) for shard_id in sorted(job.done()) if shard_id < len(shards)}
            self.resumed_shards += len(parts)
        pending = [shard for shard in shards if shard.id not in parts]
        hidden = not self.progress or not sys.stderr.isatty()
        with tqdm(total=len(shards), initial=len(parts), desc=description, unit="shard", disable=hidden,
                  leave=False) as bar:
            for shard_id, acts in self.run_shards(model, texts, pending, settings):
                if shard_id in parts:  # a retried shard that also finished: merge each id once
                    continue
                if job is not None:
                    job.save(shard_id, acts)
                    faults.driver_saved_shard()
                parts[shard_id] = acts
                bar.update(1)
                bar.set_postfix_str(self.status())
        return assemble(len(texts), [(shards[i].rows, parts[i]) for i in sorted(parts)])

    def run_shards(self, model: Model, texts: Sequence[str], shards: Sequence[Shard],
                   settings: dict[str, Any]) -> Iterator[tuple[int, Activations]]:
        """Each shard's harvest, as (shard id, state), in any order; here one after another in this process."""
        for shard in shards:
            yield shard.id, harvest(model, shard.texts(texts), batches=shard.batches, progress=False, **settings)

    def status(self) -> str:
        return "1 worker (this process)"

    def close(self) -> None:
        """Release what the executor holds (the Ray instance it started)."""
