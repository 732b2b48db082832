"""Ending a local instance's processes promptly: a process that ended but was not yet reaped (a zombie) counts
as ended, so a sweep returns as soon as everything it signalled is gone instead of waiting out its grace; a
driver waiting on its workers wakes often enough to handle Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from audit.execution import ray_executor
from audit.execution.watchdog import running, sweep

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()[0].decode()


def test_an_ended_child_not_yet_reaped_is_not_running():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while _state(child.pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _state(child.pid) == "Z"  # ended, still in /proc until its parent waits for it
    assert not running(child.pid)
    assert not os.path.exists(f"/proc/{child.pid}")  # and reaped on the way
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert running(alive.pid)
    finally:
        alive.kill()
        alive.wait()


def test_a_sweep_returns_once_its_children_are_gone_not_after_its_grace():
    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)]
    tick = time.monotonic()
    sweep([child.pid for child in children], grace=20.0)
    assert time.monotonic() - tick < 10  # SIGTERM ends them at once; before, their zombies held it for 20 s
    assert not any(running(child.pid) for child in children)


def test_a_sweep_kills_what_ignores_sigterm_after_its_grace():
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; "
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(60)"],
                                stdout=subprocess.PIPE)
    stubborn.stdout.readline()  # its SIGTERM handler is in place
    tick = time.monotonic()
    sweep([stubborn.pid], grace=0.5)
    assert 0.5 <= time.monotonic() - tick < 10 and not running(stubborn.pid)


class _SlowRay:
    """ray.wait as a stand-in: nothing ready for the first few calls."""

    def __init__(self, ready_after: int) -> None:
        self.calls, self.ready_after, self.timeouts = 0, ready_after, []

    def wait(self, refs, *, num_returns, timeout):  # noqa: ANN001
        self.calls += 1
        self.timeouts.append(timeout)
        ready = list(refs[:num_returns]) if self.calls > self.ready_after else []
        return ready, [ref for ref in refs if ref not in ready]


def test_the_driver_waits_on_its_workers_in_short_waits():
    """A blocking ray.get or ray.wait looks at signals about once a second; short waits keep Ctrl-C prompt."""
    fake = _SlowRay(ready_after=3)
    ready, rest = ray_executor._wait(fake, ["a", "b", "c"], num_returns=2)
    assert ready == ["a", "b"] and rest == ["c"] and fake.calls == 4
    assert all(timeout is not None and timeout <= 0.2 for timeout in fake.timeouts)
