"""Kill tests: SIGINT and SIGKILL at several moments, including between the writes of the output set.

Whatever the moment, ``--out`` must hold either the old complete set or the new complete set, never a mix or
nothing; SIGINT must end with one line and exit code 130; a later successful run removes what a killed one
left behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# Runs the CLI with a fault at a chosen point of publishing: after the k-th staged file is on disk, just before
# the folder swap, or just after it. The fault is a real signal sent to the process itself.
DRIVER = textwrap.dedent("""
    import os, signal, sys
    import audit.results.outdir as outdir

    signame, when = sys.argv[1], sys.argv[2]
    staged = [0]
    real_fsync, real_exchange = os.fsync, outdir._exchange

    def fault(point):
        if point == when:
            os.kill(os.getpid(), getattr(signal, signame))

    def fsync(descriptor):
        real_fsync(descriptor)
        staged[0] += 1
        fault(f"staged-{staged[0]}")

    def exchange(new, out):
        fault("before-swap")
        real_exchange(new, out)
        fault("after-swap")

    outdir.os.fsync, outdir._exchange = fsync, exchange
    from audit.cli import main
    sys.exit(main(sys.argv[3:]))
""")
MOMENTS = ["staged-1", "staged-2", "before-swap", "after-swap"]


def snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def sets(small_report, tmp_path_factory, world_policy) -> dict:
    """The old set (a plain render) and the new set (a render with a policy) of the same results."""
    from audit.cli import main

    root = tmp_path_factory.mktemp("kill")
    results = small_report / "results.json"
    assert main(["render", str(results), "--out", str(root / "old"), "--no-pdf"]) == 0
    assert main(["render", str(results), "--out", str(root / "new"), "--no-pdf", "--policy", str(world_policy)]) == 0
    old, new = snapshot(root / "old"), snapshot(root / "new")
    assert old != new and set(old) == set(new) == {"results.json", "report.html"}
    return {"root": root, "results": results, "old": old, "new": new}


@pytest.fixture(scope="module")
def world_policy(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("kill-policy") / "policy.yaml"
    path.write_text("checks:\n  - {probeset: planted, metric: selective_neurons, max: 100000}\n")
    return path


def _render(sets: dict, out: Path, signame: str, when: str, policy: Path) -> subprocess.CompletedProcess:
    args = ["render", str(sets["results"]), "--out", str(out), "--no-pdf", "--policy", str(policy)]
    return subprocess.run([sys.executable, "-c", DRIVER, signame, when, *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})


@pytest.mark.parametrize("signame", ["SIGKILL", "SIGINT"])
def test_out_holds_the_old_or_the_new_complete_set_at_every_moment(sets, world_policy, tmp_path, signame):
    outcomes = {}
    for moment in MOMENTS:
        out = tmp_path / moment
        shutil.copytree(sets["root"] / "old", out)
        done = _render(sets, out, signame, moment, world_policy)
        state = snapshot(out)
        outcomes[moment] = "old" if state == sets["old"] else "new" if state == sets["new"] else "MIXED"
        if signame == "SIGKILL":
            assert done.returncode == -signal.SIGKILL
        else:
            assert done.returncode == 130 and done.stderr == "neuron-audit: interrupted\n", done.stderr
            assert not list(tmp_path.glob(f".{moment}.new-*"))  # an interrupted run cleans up after itself
    assert outcomes == {"staged-1": "old", "staged-2": "old", "before-swap": "old", "after-swap": "new"}


def test_a_later_run_clears_what_a_killed_run_left(sets, world_policy, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(sets["root"] / "old", out)
    assert _render(sets, out, "SIGKILL", "before-swap", world_policy).returncode == -signal.SIGKILL
    assert list(tmp_path.glob(".out.new-*")) and (tmp_path / ".out.lock").exists()
    done = _render(sets, out, "SIGKILL", "never", world_policy)
    assert done.returncode == 0, done.stderr
    assert snapshot(out) == sets["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging folder, no lock file
    assert out.stat().st_mode & 0o777 == 0o777 & ~_umask()


def test_the_fallback_swap_recovers_after_a_kill_between_its_renames(sets, tmp_path):
    from audit.results import outdir

    out = tmp_path / "out"
    shutil.copytree(sets["root"] / "old", out)
    aside = tmp_path / ".out.old-x1"
    os.rename(out, aside)  # where the two-rename fallback stands if killed between its renames
    (tmp_path / ".out.new-x2").mkdir()
    outdir.recover_stale(out)
    assert snapshot(out) == sets["old"] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_render_without_pdf_keeps_the_old_pdf_until_it_succeeds(sets, tmp_path, capsys):
    from audit.cli import main

    out = tmp_path / "out"
    shutil.copytree(sets["root"] / "old", out)
    (out / "report.pdf").write_bytes(b"%PDF old")
    assert main(["render", str(tmp_path / "absent.json"), "--out", str(out), "--no-pdf"]) == 2
    assert (out / "report.pdf").read_bytes() == b"%PDF old"
    assert main(["render", str(sets["results"]), "--out", str(out), "--no-pdf"]) == 0
    assert snapshot(out) == sets["old"]  # replaced as a set: the stale PDF went only with success
    capsys.readouterr()


@pytest.mark.parametrize("signame, delay", [("SIGINT", 0.4), ("SIGINT", 2.5), ("SIGKILL", 2.5)])
def test_signals_during_a_real_run(planted_folder, concept_yaml, sets, tmp_path, signame, delay):
    """A whole `run` interrupted early (imports) or mid-way: one line and 130 for SIGINT; --out untouched."""
    out = tmp_path / "out"
    shutil.copytree(sets["root"] / "old", out)
    process = subprocess.Popen([sys.executable, "-m", "audit", "run", "--model", str(planted_folder), "--probeset",
                                str(concept_yaml), "--out", str(out), "--no-pdf", "--no-progress"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[1])
    time.sleep(delay)
    process.send_signal(getattr(signal, signame))
    _, err = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the run finished before the signal")  # only on a very fast machine
    if signame == "SIGINT":
        assert process.returncode == 130 and err.endswith("neuron-audit: interrupted\n") and "Traceback" not in err
        assert err.count("\n") == 1, err
    else:
        assert process.returncode == -signal.SIGKILL
    assert snapshot(out) == sets["old"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

