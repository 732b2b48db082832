"""Ray's edges (issue 23): an unreachable address and too many workers fail fast with one line before any
instance starts, a driver killed with SIGKILL leaves no local Ray process behind (the watchdog), and Ctrl-C
during a Ray run exits within 5 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from audit.errors import AuditInputError
from audit.execution.watchdog import process_tree

ray = pytest.importorskip("ray")


@pytest.fixture
def no_instance():
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")


def test_an_unreachable_address_is_one_line_within_seconds(no_instance, planted_folder):
    from audit.execution.ray_executor import ModelSpec, RayExecutor

    tick = time.monotonic()
    with pytest.raises(AuditInputError, match=r"--ray-address 127\.0\.0\.1:1: cannot reach the cluster"):
        RayExecutor(ModelSpec(model=str(planted_folder)), expected_sha256="0" * 64, address="127.0.0.1:1",
                    progress=False)
    assert time.monotonic() - tick < 30 and not ray.is_initialized()
    with pytest.raises(AuditInputError, match="expected HOST:PORT"):
        RayExecutor(ModelSpec(model=str(planted_folder)), expected_sha256="0" * 64, address="nowhere",
                    progress=False)


def test_more_workers_than_this_machine_has_fail_before_a_local_instance_starts(no_instance, planted_folder):
    from audit.execution.ray_executor import ModelSpec, RayExecutor, local_capacity

    available, unit = local_capacity()
    with pytest.raises(AuditInputError, match=f"--workers: 1000 asked for, but this machine has {available} {unit}"):
        RayExecutor(ModelSpec(model=str(planted_folder)), expected_sha256="0" * 64, workers=1000, progress=False)
    assert not ray.is_initialized()


DRIVER = textwrap.dedent("""
    import sys, time
    from audit.execution.ray_executor import _import_ray, start_local
    from audit.execution.watchdog import node_pids
    ray = _import_ray(local=True)
    start_local(ray)
    time.sleep(1.2)  # one refresh of the watchdog's view of the process tree
    print(" ".join(map(str, node_pids(ray))), flush=True)
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="the watchdog reads /proc")
def test_a_sigkilled_driver_leaves_no_local_ray_processes(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, env=env,
                              stderr=subprocess.DEVNULL)
    try:
        line = driver.stdout.readline()
        pids = [int(p) for p in line.split()]
        assert pids and all(_alive(pid) for pid in pids), line
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert not _still_alive(pids)


FAKE_DRIVER = textwrap.dedent("""
    import subprocess, sys, time
    from audit.execution.watchdog import start_watchdog
    # a stand-in for Ray's node: a process in its own session (a driver's death does not reach it) with a child
    node = subprocess.Popen([sys.executable, "-c", "import subprocess, time; "
                             "subprocess.Popen(['sleep', '600']); time.sleep(600)"], start_new_session=True)
    time.sleep(0.5)
    start_watchdog([node.pid])
    time.sleep(1.2)  # one refresh of the watched tree
    print(node.pid, flush=True)
    time.sleep(600)
""")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="the watchdog reads /proc")
def test_the_watchdog_stops_an_orphaned_process_tree_when_its_driver_is_killed():
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    driver = subprocess.Popen([sys.executable, "-c", FAKE_DRIVER], stdout=subprocess.PIPE, text=True, env=env)
    try:
        node = int(driver.stdout.readline())
        tree = [node] + [int(p) for p in Path(f"/proc/{node}/task/{node}/children").read_text().split()]
        assert len(tree) == 2 and all(_alive(pid) for pid in tree)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in tree):
        time.sleep(0.1)
    assert not [pid for pid in tree if _alive(pid)]  # without the watchdog both would sleep on for 10 minutes


def test_rays_own_output_is_captured_not_printed(capfd):
    from audit.execution.ray_executor import captured_output

    with captured_output() as text:
        os.write(2, b"[2026-12-04 WARNING] 20 lines of Ray start-up chatter\n")
        os.write(1, b"more of it\n")
    assert capfd.readouterr() == ("", "")
    assert "Ray start-up chatter" in text.getvalue() and "more of it" in text.getvalue()


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="the watchdog reads /proc")
def test_ctrl_c_during_a_ray_run_exits_within_five_seconds(planted_folder, concept_yaml, tmp_path):
    """Ctrl-C (SIGINT to the run's process group, as a terminal sends it) once the local Ray instance is up:
    exit 130 with one line within 5 s, no staging folder left, and no Ray process of this run still alive
    shortly after."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "audit", "run", "--model", str(planted_folder), "--probeset",
                                str(concept_yaml), "--out", str(tmp_path / "out"), "--executor", "ray", "--workers",
                                "1", "--shard-size", "4", "--no-explain", "--null-sets", "5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                               start_new_session=True)  # its own process group, as a terminal's foreground job
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any("raylet" in _cmdline(pid) for pid in process_tree([process.pid])):
            break
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before Ray started"
    time.sleep(1.0)
    ray_pids = [pid for pid in process_tree([process.pid]) if pid != process.pid]
    tick = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground process group
    try:
        _, err = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    assert time.monotonic() - tick < 5
    assert process.returncode == 130 and err.endswith("neuron-audit: interrupted\n"), err[-2000:]
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.new-*"))
    left = _still_alive(ray_pids)
    assert not left, [_cmdline(pid) for pid in left]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _still_alive(pids: list[int], *, within: float = 15.0) -> list[int]:
    """Those of ``pids`` still running after waiting up to ``within`` seconds for them to end."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    return [pid for pid in pids if _alive(pid)]
