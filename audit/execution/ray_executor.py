"""Run shards on a Ray cluster: one actor per worker, each loading the job's models once.

Each actor proves at start that it loaded the same weights as the driver (sha256 of every model), or the run
stops with one line naming the node. Actors keep nothing between shards: a shard's result is an immutable state
returned to the driver, which saves it and merges each shard id once, in order. An actor that dies mid-shard
(killed, out of memory, node lost) is replaced and its shard runs again elsewhere.

A local instance (no ``--ray-address``) listens on the loopback interface only, starts no dashboard and keeps
Ray's token authentication on. ``auto`` joins the cluster that ``ray start`` made on this machine.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import sys
import tempfile
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterator, Sequence

from ..errors import AuditInputError
from ..model.loading import Model, load_model
from . import faults
from .executor import Executor, Work
from .tasks import Task, run_shard
from .watchdog import instance_processes, node_pids, start_watchdog, stop_watchdog, sweep

MAX_ATTEMPTS = 3  # a shard whose worker dies this many times stops the run
CONNECT_TIMEOUT_S = 10  # reaching a cluster's address


@dataclass(frozen=True)
class ModelSpec:
    """How a worker loads a model: the CLI's model argument and loading options."""

    model: str
    allow_pickle: bool = False
    trust_remote_code: bool = False
    cache_dir: str | None = None
    allow_weights: tuple[str, ...] = ()
    dtype: str = "auto"


def node_name() -> str:
    return socket.gethostname()


class ShardWorker:
    """A Ray actor's body: loads its models once (one for an audit or explanation, two for a comparison);
    runs shards; keeps no state between them."""

    def __init__(self, specs: list[dict[str, Any]], device: str) -> None:
        self.specs = [ModelSpec(**{**spec, "allow_weights": tuple(spec.get("allow_weights", ()))})
                      for spec in specs]
        self.device = device
        self.models: list[Model] = []

    def start(self) -> dict[str, Any]:
        """Load the models; report the node and the weights hashes, or the one-line reason it could not."""
        import torch

        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))
        try:
            for spec in self.specs:
                self.models.append(load_model(spec.model, device=self.device, allow_pickle=spec.allow_pickle,
                                              trust_remote_code=spec.trust_remote_code, cache_dir=spec.cache_dir,
                                              allow_weights=spec.allow_weights, dtype=spec.dtype))
        except AuditInputError as exc:
            return {"node": node_name(), "error": str(exc)}
        return {"node": node_name(), "weights_sha256": [m.weights_sha256 for m in self.models], "pid": os.getpid()}

    def run(self, shard_id: int, task: Task, payload: dict[str, Any]) -> tuple[int, Any]:
        faults.worker_starts(shard_id)
        return shard_id, run_shard(task, [self.models[i] for i in task.models], payload)


class RayExecutor(Executor):
    """Shards on Ray actors; ``address`` None starts a local instance, ``auto`` joins a running cluster.

    ``specs`` are the models every worker loads and ``expected_sha256`` their weights hashes on the driver;
    a job names its models by their place in that list."""

    name = "ray"

    def __init__(self, specs: ModelSpec | Sequence[ModelSpec], *, expected_sha256: str | Sequence[str],
                 workers: int | None = None, address: str | None = None, shard_size: int = 256,
                 progress: bool = True) -> None:
        super().__init__(shard_size=shard_size, progress=progress)
        self.specs = [specs] if isinstance(specs, ModelSpec) else list(specs)
        self.expected = [expected_sha256] if isinstance(expected_sha256, str) else list(expected_sha256)
        self.started_instance = False
        self.watchdog = None
        self.roots: list[int] = []  # the local instance's own processes (GCS, raylet, …), read when it started
        self.actors: list[Any] = []
        ray = self.ray = _import_ray(local=address is None)
        try:  # anything from here on (a Ctrl-C included) closes what was started
            if not ray.is_initialized():
                if address is None:
                    available, unit = local_capacity()
                    if workers and workers > available:  # before an instance with that many CPUs starts
                        raise AuditInputError(f"--workers: {workers} asked for, but this machine has {available} "
                                              f"{unit}")
                    self.started_instance = True  # set first: close() also stops a half-started instance
                    self.watchdog = start_local(ray)
                    self.roots = node_pids(ray)
                else:
                    join(ray, address)
            resources = ray.cluster_resources()
            self.gpus = int(resources.get("GPU", 0))
            available = self.gpus or int(resources.get("CPU", 1))
            self.target = workers or max(1, available)
            if workers and workers > available:
                raise AuditInputError(f"--workers: {workers} asked for, but the cluster offers {available} "
                                      f"{'GPUs' if self.gpus else 'CPUs'}")
            self.actor_class = ray.remote(ShardWorker)
            self.nodes: dict[Any, str] = {}
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
        specs = [asdict(spec) for spec in self.specs]
        actors = [self.actor_class.options(**options).remote(specs, device) for _ in range(count)]
        refs = [actor.start.remote() for actor in actors]
        _wait(self.ray, refs, num_returns=len(refs))
        return actors, self.ray.get(refs)

    def _admit(self, actor: Any, info: dict[str, Any]) -> None:
        """Keep ``actor`` if it loaded the driver's weights; otherwise stop with one line naming its node."""
        if "error" in info:
            self.ray.kill(actor)
            raise AuditInputError(f"worker on node {info['node']}: {info['error']}")
        for spec, found, expected in zip(self.specs, info["weights_sha256"], self.expected):
            if found != expected:
                self.ray.kill(actor)
                raise AuditInputError(f"worker on node {info['node']}: model {spec.model} there has weights "
                                      f"sha256 {found[:16]}…, not the driver's {expected[:16]}…; every node must "
                                      "hold the same checkpoint")
        self.actors.append(actor)
        self.nodes[actor] = info["node"]

    def run_shards(self, task: Task, models: Sequence[Model], work: Work) -> Iterator[tuple[int, Any]]:
        """Shards on idle actors, pulled from ``work`` only as actors free up (a streamed corpus stays a
        stream); a shard whose actor died runs again on a fresh one."""
        ray = self.ray
        try:  # the job's models as places in the workers' list (a comparison's audits run A or B alone)
            task = replace(task, models=tuple(self.expected.index(models[i].weights_sha256) for i in task.models))
        except ValueError:
            raise RuntimeError("the executor's workers do not hold the job's model") from None
        work = iter(work)
        retry: deque[tuple[int, dict[str, Any]]] = deque()
        idle = list(self.actors)
        inflight: dict[Any, tuple[Any, tuple[int, dict[str, Any]]]] = {}
        attempts: dict[int, int] = {}
        exhausted = False
        while True:
            while idle and (retry or not exhausted):
                shard = retry.popleft() if retry else next(work, None)
                if shard is None:
                    exhausted = True
                    break
                actor = idle.pop()
                inflight[actor.run.remote(shard[0], task, shard[1])] = (actor, shard)
            if not inflight:
                return
            (ref,), _ = _wait(ray, list(inflight), num_returns=1)
            actor, shard = inflight.pop(ref)
            try:
                shard_id, state = ray.get(ref)
            except ray.exceptions.RayActorError:
                attempts[shard[0]] = attempts.get(shard[0], 0) + 1
                if attempts[shard[0]] >= MAX_ATTEMPTS:
                    raise RuntimeError(f"shard {shard[0]}: its worker died {MAX_ATTEMPTS} times") from None
                retry.append(shard)  # run it again, elsewhere
                self._replace(actor)
                idle.append(self.actors[-1])
                continue
            idle.append(actor)
            yield shard_id, state

    def _replace(self, dead: Any) -> None:
        """Drop a dead actor and start a fresh one (which loads the models and proves their weights)."""
        self.actors.remove(dead)
        self.nodes.pop(dead, None)
        (actor,), (info,) = self._start(1)
        self._admit(actor, info)

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        self.actors = []
        if self.started_instance:
            # ray.shutdown() leaves the dashboard and runtime-env agents running, orphaned: stop the whole
            # process tree as it was just before (a Ctrl-C lands here too)
            instance = instance_processes(self.roots or node_pids(self.ray),
                                          spare=[self.watchdog.pid] if self.watchdog is not None else [])
            with captured_output():
                self.ray.shutdown()
            sweep(instance)
            self.started_instance = False
        stop_watchdog(self.watchdog)
        self.watchdog = None


POLL_S = 0.1  # how often a driver waiting on its workers lets Python handle a signal (Ctrl-C)


def _wait(ray: Any, refs: list[Any], *, num_returns: int) -> tuple[list[Any], list[Any]]:
    """``ray.wait`` for ``num_returns`` of ``refs``, in short waits: a blocking Ray call checks for signals
    only about once a second, and Ctrl-C should stop a run at once."""
    while True:
        ready, rest = ray.wait(refs, num_returns=num_returns, timeout=POLL_S)
        if len(ready) >= num_returns:
            return ready, rest


def local_capacity() -> tuple[int, str]:
    """What a local instance can really offer workers: this machine's GPUs, else the CPUs this process may use."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus:
        return gpus, "GPUs"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cpus, "CPUs"


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """Ray's own log lines (warnings from its C++ core and Python logging, written straight to the file
    descriptors) go to a temporary file instead of the terminal; the text is yielded for error messages."""
    text = io.StringIO()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)
            log.seek(0)
            text.write(log.read().decode("utf-8", "replace"))


def start_local(ray: Any) -> Any:
    """Start a local instance (every CPU of the machine, loopback only, no dashboard, Ray's output captured)
    and a watchdog that stops its processes should this driver die without closing it."""
    try:
        with captured_output():
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise AuditInputError(f"--executor ray: cannot start a local Ray instance ({_first_line(exc)})") from None
    return start_watchdog(node_pids(ray))


def join(ray: Any, address: str) -> None:
    """Join the cluster at ``address`` within :data:`CONNECT_TIMEOUT_S` (its port is tried first, so an
    unreachable address fails at once instead of after Ray's own minutes of retries), output captured."""
    if address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            raise AuditInputError(f"--ray-address {address}: expected HOST:PORT (or 'auto')")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc))
            raise AuditInputError(f"--ray-address {address}: cannot reach the cluster ({reason}); start it with "
                                  "'ray start --head' or check the address") from None
    try:
        with captured_output():
            ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise AuditInputError(f"--ray-address {address}: cannot join Ray ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


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
