"""The executor interface and the local executor: corpus-scale jobs, sharded or whole, resumable.

Three jobs run through an executor (see :mod:`audit.execution.tasks`): a harvest (one model's per-text
aggregates), a correlation (two models' neuron-pair sums) and top contexts (a few neurons' strongest texts in
a corpus of any size). Sharded, an executor runs each shard's :func:`~audit.execution.tasks.run_shard`, keeps
each finished shard's state in the run's :class:`~audit.execution.state.JobState` (when there is one), skips
shards already there, and merges every shard exactly once in shard-id order — so the result does not depend
on where or in which order the shards ran.
"""

from __future__ import annotations

import sys
from itertools import islice
from typing import Any, Iterable, Iterator, Sequence

from tqdm.auto import tqdm

from ..analysis.correlation import CorrelationState
from ..analysis.sample import HashSample
from ..analysis.topk import TopContexts
from ..model.contexts import top_contexts
from ..model.correlate import CHUNK_BATCHES, stream_correlation
from ..model.harvest import Activations, assemble, harvest
from ..model.loading import Model
from . import faults
from .plan import shard_plan
from .state import JobState
from .tasks import ContextsState, Task, run_shard

Work = Iterable[tuple[int, dict[str, Any]]]  # (shard id, payload), ids 0, 1, 2, … in order


class Executor:
    """Runs corpus-scale jobs; subclasses say where the shards run (:meth:`run_shards`)."""

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
        """Harvest ``texts`` (``settings``: batch_size, max_length, token_moments, outputs, active_counts)."""
        if self.shard_size is None:
            return harvest(model, texts, progress=self.progress, description=description, **settings)
        shards = shard_plan(texts, batch_size=settings["batch_size"], shard_size=self.shard_size, model=model,
                            max_length=settings["max_length"])
        work = ((s.id, {"texts": s.texts(texts), "batches": s.batches}) for s in shards)
        parts = self.run_job(Task("harvest", dict(settings)), [model], work, total=len(shards), job=job,
                             description=description)
        return assemble(len(texts), [(shards[shard_id].rows, acts) for shard_id, acts in parts])

    def correlate(self, model_a: Model, model_b: Model, texts: Sequence[str], pairs: Sequence[tuple[int, int]], *,
                  settings: dict[str, Any], description: str = "compare",
                  job: JobState | None = None) -> CorrelationState:
        """Correlation sums of ``pairs`` over ``texts`` (``settings``: align, batch_size, max_length, stride,
        precision).

        Shards hold whole chunks of the corpus plan, whose products are the unsharded pass's own (see
        :func:`~audit.model.correlate.stream_correlation`), so any sharding gives the same sums up to the order
        of float64 additions."""
        streaming = {key: value for key, value in settings.items() if key != "precision"}
        if self.shard_size is None:
            state = CorrelationState(pairs, model_a.neurons_per_layer, model_b.neurons_per_layer,
                                     precision=settings["precision"])
            return stream_correlation(model_a, model_b, texts, state, progress=self.progress, **streaming)
        chunk = CHUNK_BATCHES * settings["batch_size"]
        shards = shard_plan(texts, batch_size=settings["batch_size"], shard_size=-(-self.shard_size // chunk) * chunk,
                            model=model_a, max_length=settings["max_length"])
        work = ((s.id, {"texts": s.texts(texts), "batches": s.batches}) for s in shards)
        task = Task("correlate", {**settings, "pairs": [list(p) for p in pairs]}, models=(0, 1))
        merged = CorrelationState(pairs, model_a.neurons_per_layer, model_b.neurons_per_layer,
                                  precision=settings["precision"])
        for _, state in self.run_job(task, [model_a, model_b], work, total=len(shards), job=job,
                                     description=description):
            merged.merge(state)
        return merged

    def contexts(self, model: Model, items: Iterable[tuple[str, str]], neurons: Sequence[tuple[int, int]], *,
                 k: int, sample: int, seed: int, batch_size: int, max_length: int, description: str = "contexts",
                 job: JobState | None = None) -> ContextsState:
        """The ``k`` strongest (key, text) items per neuron and a hash sample of ``sample`` items, streamed
        (the items are read shard by shard, never all at once)."""
        settings = {"neurons": [list(n) for n in neurons], "k": k, "sample": sample, "seed": seed,
                    "batch_size": batch_size, "max_length": max_length}
        if self.shard_size is None:
            collected = HashSample(k=sample, seed=seed)

            def sampled(stream: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
                for batch in iter(lambda: list(islice(stream, 1024)), []):
                    collected.add(batch)
                    yield from batch

            top = top_contexts(model, sampled(iter(items)), neurons, k=k, batch_size=batch_size,
                               max_length=max_length)
            return ContextsState(top, collected)
        stream = iter(items)
        work = ((number, {"items": chunk}) for number, chunk in
                enumerate(iter(lambda: list(islice(stream, self.shard_size)), [])))
        merged = ContextsState(TopContexts(neurons=list(neurons), k=k), HashSample(k=sample, seed=seed))
        for _, state in self.run_job(Task("contexts", settings), [model], work, total=None, job=job,
                                     description=description):
            merged.merge(state)
        return merged

    def run_job(self, task: Task, models: Sequence[Model], work: Work, *, total: int | None,
                job: JobState | None, description: str) -> Iterator[tuple[int, Any]]:
        """Every shard's state in shard-id order, each exactly once: read back from ``job`` when an earlier
        run finished it, otherwise computed by :meth:`run_shards` (in any order) and saved to ``job``."""
        done = job.done() if job is not None else set()
        self.resumed_shards += len(done)
        waiting: dict[int, Any] = {}
        next_id = 0
        hidden = not self.progress or not sys.stderr.isatty()
        with tqdm(total=total, initial=len(done), desc=description, unit="shard", disable=hidden,
                  leave=False) as bar:
            fresh = ((shard_id, payload) for shard_id, payload in work if shard_id not in done)
            for shard_id, state in self.run_shards(task, models, fresh):
                if shard_id in waiting or shard_id < next_id:  # a retried shard that also finished: once only
                    continue
                if job is not None:
                    job.save(shard_id, task.kind, state)
                    faults.driver_saved_shard()
                waiting[shard_id] = state
                bar.update(1)
                bar.set_postfix_str(self.status())
                while next_id in waiting or next_id in done:
                    yield next_id, waiting.pop(next_id) if next_id in waiting else job.load(next_id, task.kind)
                    next_id += 1
            while next_id in done:
                yield next_id, job.load(next_id, task.kind)
                next_id += 1

    def run_shards(self, task: Task, models: Sequence[Model], work: Work) -> Iterator[tuple[int, Any]]:
        """Each shard's state, as (shard id, state), in any order; here one after another in this process."""
        for shard_id, payload in work:
            yield shard_id, run_shard(task, [models[i] for i in task.models], payload)

    def status(self) -> str:
        return "1 worker (this process)"

    def close(self) -> None:
        """Release what the executor holds (the Ray instance it started)."""

