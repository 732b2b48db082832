"""A watchdog for the local Ray instance a run starts: when the driver dies without closing it (SIGKILL, a CI
timeout, an out-of-memory kill), the instance's processes (GCS, raylet and every worker below them) are
stopped instead of idling on the machine.

The watchdog is a small child process in its own session (a kill of the driver's process group spares it). It
notices the driver's death by its own re-parenting (``getppid`` changes), which no reused process id can fake,
then sends SIGTERM to the instance's process tree (refreshed every second while the driver lives, because a
dying raylet orphans its workers) and SIGKILL to what is left two seconds later. A driver that closes its
instance (at the end of a run or on Ctrl-C) sweeps it itself (:func:`instance_processes`, :func:`sweep`):
``ray.shutdown`` leaves Ray's dashboard and runtime-env agents orphaned and running.
"""

from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import time
from typing import Any, Sequence

POLL_S = 0.2

_WATCH = r"""
import os, signal, sys, time

driver, roots = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]


%(tree)s

def signal_all(pids, number):
    for pid in pids:
        try:
            os.kill(pid, number)
        except OSError:
            pass


known, beat = set(tree(roots)), 0
while os.getppid() == driver:
    time.sleep(%(poll)s)
    beat += 1
    if beat %% 5 == 0:  # workers come and go: keep the tree fresh, since the dying raylet may orphan them
        known = set(tree(roots)) | {pid for pid in known if os.path.exists(f"/proc/{pid}")}
doomed = sorted(known | set(tree(roots)))
signal_all(doomed, signal.SIGTERM)
deadline = time.monotonic() + 2.0
while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in doomed):
    time.sleep(0.1)
signal_all(tree(roots) + doomed, signal.SIGKILL)
"""


def process_tree(roots):
    """``roots`` and every process below them (read from /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    ppid = int(handle.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo += children.get(pid, [])
    return found


_WATCH = _WATCH % {"poll": POLL_S, "tree": inspect.getsource(process_tree).replace("process_tree", "tree")}


def sweep(pids: Sequence[int], *, grace: float = 0.5) -> None:
    """SIGTERM ``pids`` that still run, then SIGKILL what is left after ``grace`` seconds (and wait up to a
    second for those to be gone)."""
    alive = [pid for pid in pids if running(pid)]
    for number, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 1.0)):
        alive = [pid for pid in alive if running(pid)]
        for pid in alive:
            try:
                os.kill(pid, number)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(running(pid) for pid in alive):
            time.sleep(0.02)


def running(pid: int) -> bool:
    """Whether ``pid`` still runs: a process that ended but was not yet waited for (a zombie, state Z) does
    not, though its /proc entry stays until its parent reaps it. This process reaps its own children here."""
    _reap(pid)
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not a child of this process, or already reaped
        pass


def instance_processes(roots: Sequence[int], *, spare: Sequence[int] = ()) -> list[int]:
    """The local Ray instance this driver started: ``roots`` and every descendant of theirs and of this
    process (the instance may be half-started when a Ctrl-C lands, before its root ids are known), plus Ray
    processes (``ray::…``) of this process group that a dying raylet already orphaned — Ray's dashboard and
    runtime-env agents outlive their raylet. ``spare``: processes to leave alone (the watchdog)."""
    if not os.path.isdir("/proc"):
        return []
    me = os.getpid()
    found = set(process_tree([*roots, me]))
    group = os.getpgrp()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read()
        except OSError:
            continue
        if int(fields[2]) == group and command.startswith(b"ray::"):
            found.add(int(entry))
    return sorted(found - {me, *spare})


def node_pids(ray: Any) -> list[int]:
    """Process ids of the local Ray instance this driver started (GCS, raylet, log monitor, …)."""
    node = getattr(getattr(ray, "_private").worker, "_global_node", None)
    if node is None:
        return []
    return [info.process.pid for infos in node.all_processes.values() for info in infos
            if getattr(info, "process", None) is not None]


def start_watchdog(pids: Sequence[int]) -> subprocess.Popen | None:
    """Watch this process; when it dies, stop ``pids`` and all their descendants. None where there is no /proc."""
    if not pids or not os.path.isdir("/proc"):
        return None
    return subprocess.Popen([sys.executable, "-c", _WATCH, str(os.getpid()), *map(str, pids)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


def stop_watchdog(process: subprocess.Popen | None) -> None:
    """The driver closed its instance (and swept its processes, :func:`sweep`): the watchdog is no longer
    needed."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()
