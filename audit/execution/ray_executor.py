"""Run shards on a Ray cluster: one actor per worker, each loading the model once.

Each actor proves at start that it loaded the same weights as the driver (sha256), or the run stops with
one line naming the node. Actors keep nothing between shards: a shard's result is an immutable state
returned to the driver, which saves it and merges each shard id once, in order. An actor that dies mid-shard
(killed, out of memory, node lost) is replaced and its shard runs again elsewhere.

A local instance (no ``--ray-address``) listens on the loopback interface only, starts no dashboard and keeps
Ray's token authentication on. ``auto`` joins the cluster that ``ray start`` made on this machine.
"""

from __future__ import annotations

import os
import socket
import sys
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

from ..errors import AuditInputError
from ..model.harvest import Activations, harvest
from ..model.loading import Model, load_model
from . import faults
from .executor import Executor
from .plan import Shard

MAX_ATTEMPTS = 3  # a shard whose worker dies this many times stops the run


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads the model: the CLI's ``--model`` and loading options."""

    model: str
    allow_pickle: bool = False
    trust_remote_code: bool = False
    cache_dir: str | None = None


def node_name() -> str:
    return socket.gethostname()


class HarvestWorker:
    """A Ray actor's body: loads the model once; harvests shards; keeps no state between them."""

    def __init__(self, spec: dict[str, Any], device: str) -> None:
        self.spec = ModelSpec(**spec)
        self.device = device
        self.model: Model | None = None

    def start(self) -> dict[str, Any]:
        """Load the model; report the node, the weights hash, or the one-line reason it could not."""
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        try:
            self.model = load_model(self.spec.model, device=self.device, allow_pickle=self.spec.allow_pickle,
                                    trust_remote_code=self.spec.trust_remote_code, cache_dir=self.spec.cache_dir)
        except AuditInputError as exc:
            return {"node": node_name(), "error": str(exc)}
        return {"node": node_name(), "weights_sha256": self.model.weights_sha256, "pid": os.getpid()}

    def harvest(self, shard_id: int, texts: list[str], batches: tuple, settings: dict[str, Any]
                ) -> tuple[int, Activations]:
        faults.worker_starts(shard_id)
        return shard_id, harvest(self.model, texts, batches=batches, progress=False, **settings)


class RayExecutor(Executor):
    """Shards on Ray actors; ``address`` None starts a local instance, ``auto`` joins a running cluster."""

    name = "ray"

    def __init__(self, spec: ModelSpec, *, expected_sha256: str, workers: int | None = None,
                 address: str | None = None, shard_size: int = 256, progress: bool = True) -> None:
        super().__init__(shard_size=shard_size, progress=progress)
        self.spec = spec
        self.expected_sha256 = expected_sha256
        self.started_instance = False
        ray = _import_ray(local=address is None)
        if not ray.is_initialized():
            try:
                if address is None:
                    ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, logging_level="ERROR",
                             log_to_driver=False)
                    self.started_instance = True
                else:
                    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise AuditInputError(f"--ray-address {address or '(local)'}: cannot start or join Ray ({first})"
                                      ) from None
        self.ray = ray
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        available = self.gpus or int(resources.get("CPU", 1))
        self.target = workers or max(1, available)
        if workers and workers > available:
            raise AuditInputError(f"--workers: {workers} asked for, but the cluster offers {available} "
                                  f"{'GPUs' if self.gpus else 'CPUs'}")
        self.actor_class = ray.remote(HarvestWorker)
        self.actors: list[Any] = []
        self.nodes: dict[Any, str] = {}
        try:
            for actor, info in zip(*self._start(self.target)):
                self._admit(actor, info)
        except BaseException:
            self.close()
            raise

    @property
    def workers(self) -> int:
        return len(self.actors)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "nodes": sorted(set(self.nodes.values())), "gpus_per_worker": 1 if self.gpus
                else 0, "ray": self.ray.__version__}

    def status(self) -> str:
        return f"{len(self.actors)} workers alive"

    def _start(self, count: int) -> tuple[list[Any], list[dict[str, Any]]]:
        options: dict[str, Any] = {"num_cpus": 1, "num_gpus": 1 if self.gpus else 0}
        if faults.forwarded():
            options["runtime_env"] = {"env_vars": faults.forwarded()}
        device = "cuda" if self.gpus else "cpu"
        actors = [self.actor_class.options(**options).remote(asdict(self.spec), device) for _ in range(count)]
        infos = self.ray.get([actor.start.remote() for actor in actors])
        return actors, infos

    def _admit(self, actor: Any, info: dict[str, Any]) -> None:
        """Keep ``actor`` if it loaded the driver's weights; otherwise stop with one line naming its node."""
        if "error" in info:
            self.ray.kill(actor)
            raise AuditInputError(f"worker on node {info['node']}: {info['error']}")
        if info["weights_sha256"] != self.expected_sha256:
            self.ray.kill(actor)
            raise AuditInputError(f"worker on node {info['node']}: --model {self.spec.model} there has weights "
                                  f"sha256 {info['weights_sha256'][:16]}…, not the driver's "
                                  f"{self.expected_sha256[:16]}…; every node must hold the same checkpoint")
        self.actors.append(actor)
        self.nodes[actor] = info["node"]

    def run_shards(self, model: Model, texts: Sequence[str], shards: Sequence[Shard],
                   settings: dict[str, Any]) -> Iterator[tuple[int, Activations]]:
        ray = self.ray
        pending = deque(shards)
        idle = list(self.actors)
        inflight: dict[Any, tuple[Any, Shard]] = {}
        attempts: dict[int, int] = {}
        while pending or inflight:
            while pending and idle:
                actor, shard = idle.pop(), pending.popleft()
                ref = actor.harvest.remote(shard.id, shard.texts(texts), shard.batches, settings)
                inflight[ref] = (actor, shard)
            (ref,), _ = ray.wait(list(inflight), num_returns=1)
            actor, shard = inflight.pop(ref)
            try:
                shard_id, acts = ray.get(ref)
            except ray.exceptions.RayActorError:
                attempts[shard.id] = attempts.get(shard.id, 0) + 1
                if attempts[shard.id] >= MAX_ATTEMPTS:
                    raise RuntimeError(f"shard {shard.id}: its worker died {MAX_ATTEMPTS} times") from None
                pending.appendleft(shard)  # run it again, elsewhere
                self._replace(actor)
                idle.append(self.actors[-1])
                continue
            idle.append(actor)
            yield shard_id, acts

    def _replace(self, dead: Any) -> None:
        """Drop a dead actor and start a fresh one (which loads the model and proves its weights)."""
        self.actors.remove(dead)
        self.nodes.pop(dead, None)
        (actor,), (info,) = self._start(1)
        self._admit(actor, info)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started_instance:
            self.ray.shutdown()
            self.started_instance = False


def _import_ray(*, local: bool) -> Any:
    """Import Ray; a local instance binds to the loopback interface only (set before Ray is first imported)."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray's switch for a loopback-only node
    try:
        import ray
    except ImportError:
        raise AuditInputError("--executor ray: Ray is not installed (pip install 'neuron-audit[distributed]')"
                              ) from None
    return ray
