"""Fault injection for the fault-tolerance tests, off unless its environment variables are set.

``NEURON_AUDIT_FAULT_KILL_SHARD=<id>:<marker file>`` SIGKILLs the worker that starts shard ``<id>`` (once:
the marker file records it). ``NEURON_AUDIT_FAULT_KILL_DRIVER=<n>`` SIGKILLs the driver right after it has
saved ``n`` shard states. Real runs never set them; the tests use them to kill at exact moments.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

KILL_SHARD = "NEURON_AUDIT_FAULT_KILL_SHARD"
KILL_DRIVER = "NEURON_AUDIT_FAULT_KILL_DRIVER"
_saved = 0


def worker_starts(shard_id: int) -> None:
    """Called by a worker as it starts a shard."""
    fault = os.environ.get(KILL_SHARD)
    if not fault:
        return
    target, marker = fault.split(":", 1)
    if int(target) == shard_id and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


def driver_saved_shard() -> None:
    """Called by the driver after it saved a shard state."""
    global _saved
    limit = os.environ.get(KILL_DRIVER)
    if not limit:
        return
    _saved += 1
    if _saved >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)


def forwarded() -> dict[str, str]:
    """The fault settings a worker process needs (passed in its runtime environment)."""
    return {KILL_SHARD: os.environ[KILL_SHARD]} if os.environ.get(KILL_SHARD) else {}
