"""A watchdog for the local Ray instance a run starts: when the driver dies without closing it (SIGKILL, a CI
timeout, an out-of-memory kill), the instance's processes (GCS, raylet and every worker below them) are
stopped instead of idling on the machine.

The watchdog is a small child process in its own session (a kill of the driver's process group spares it). It
notices the driver's death by its own re-parenting (``getppid`` changes), which no reused process id can fake,
then sends SIGTERM to the instance's process tree (refreshed every second while the driver lives, because a
dying raylet orphans its workers) and SIGKILL to what is left two seconds later. A driver that
closes its instance normally stops the watchdog first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Sequence

POLL_S = 0.2

_WATCH = r"""
import os, signal, sys, time

driver, roots = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]


def tree(roots):
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
""" % {"poll": POLL_S}


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
    """The driver closed its instance itself: the watchdog is no longer needed."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()
