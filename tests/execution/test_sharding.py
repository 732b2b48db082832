"""Sharded harvests in this process: plans, bit-identical per-text results, resumable shard states."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from audit.cli import main
from audit.errors import AuditInputError
from audit.execution.executor import Executor
from audit.execution.plan import shard_plan
from audit.execution.state import STATE_DIR, StateStore
from audit.model.harvest import batch_plan, harvest
from tests import tiny
from tests.execution.common import assert_close, compare_args, one_thread, without_run

FAST = ["--no-progress", "--top-k", "3", "--no-pdf", "--null-sets", "5", "--ablation-texts", "8"]


def test_shards_are_whole_batches_of_the_unsharded_plan():
    texts = tiny.sentences(50, seed=3, length=(2, 14))
    shards = shard_plan(texts, batch_size=4, shard_size=10)  # rounded up to 3 batches of 4
    assert [len(s.rows) for s in shards] == [12, 12, 12, 12, 2]
    assert np.array_equal(np.sort(np.concatenate([s.rows for s in shards])), np.arange(50))
    flat = [s.rows[b] for s in shards for b in s.batches]
    assert all(np.array_equal(a, b) for a, b in zip(flat, batch_plan(texts, 4), strict=True))


def test_sharded_harvest_equals_the_unsharded_one(planted_model):
    texts = tiny.sentences(37, seed=4, length=(2, 20))
    settings = {"batch_size": 4, "max_length": 16, "token_moments": True, "outputs": True}
    whole = harvest(planted_model, texts, progress=False, **settings)
    sharded = Executor(shard_size=9, progress=False).harvest(planted_model, texts, settings=settings,
                                                              description="t")
    for field in ("max", "mean", "n_tokens", "truncated"):
        assert np.array_equal(getattr(whole, field), getattr(sharded, field)), field
    assert np.array_equal(whole.outputs["loglik"], sharded.outputs["loglik"])
    assert whole.token_count == sharded.token_count
    np.testing.assert_allclose(sharded.moments, whole.moments, rtol=1e-12)  # sums, in another association


def test_resume_refuses_another_run(tmp_path):
    manifest = {"weights_sha256": "a" * 64, "settings": {"top_k": 20}, "probesets": [["x", "1"]],
                "execution": {"shard_size": 8}}
    StateStore(tmp_path, manifest, resume=False).job("harvest-k").folder.joinpath("shard-000000.npz").touch()
    with pytest.raises(AuditInputError, match=r"other settings \(top_k\)"):
        StateStore(tmp_path, {**manifest, "settings": {"top_k": 5}}, resume=True)
    with pytest.raises(AuditInputError, match="other model weights"):
        StateStore(tmp_path, {**manifest, "weights_sha256": "b" * 64}, resume=True)
    with pytest.raises(AuditInputError, match="other probe sets"):
        StateStore(tmp_path, {**manifest, "probesets": [["x", "2"]]}, resume=True)
    assert StateStore(tmp_path, manifest, resume=False).discarded == 1  # a fresh run starts afresh
    with pytest.raises(AuditInputError, match="no interrupted run"):
        StateStore(tmp_path / "elsewhere", manifest, resume=True)


def test_a_killed_driver_resumes_from_its_shard_states(planted_folder, concept_yaml, tmp_path):
    args = ["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), *FAST, "--shard-size", "8"]
    def cli(*extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
        # every run in a fresh process, as a user's would be: nothing carried over from the test session
        return subprocess.run([sys.executable, "-m", "audit", *args, *extra], env=env or one_thread(),
                              capture_output=True, text=True, timeout=300)

    assert cli("--out", str(tmp_path / "clean")).returncode == 0
    out = tmp_path / "killed"
    killed = cli("--out", str(out), env=one_thread(NEURON_AUDIT_FAULT_KILL_DRIVER="4"))
    assert killed.returncode == -9  # SIGKILL right after the 4th shard state was saved
    assert len(list((out / STATE_DIR).rglob("shard-*.npz"))) == 4 and not (out / "results.json").exists()
    changed = subprocess.run([sys.executable, "-m", "audit", *args[:-2], "--shard-size", "16", "--out", str(out),
                              "--resume"], env=one_thread(), capture_output=True, text=True, timeout=300)
    assert changed.returncode == 2 and "other shard settings" in changed.stderr
    assert cli("--out", str(out), "--resume").returncode == 0
    assert_close(without_run(out / "results.json"), without_run(tmp_path / "clean" / "results.json"))
    execution = json.loads((out / "results.json").read_text())["run"]["execution"]
    assert execution["resumed_shards"] == 4 and not (out / STATE_DIR).exists()


def test_scale_options_that_contradict_are_input_errors(concept_yaml, tmp_path, capsys):
    base = ["run", "--probeset", str(concept_yaml), "--no-progress"]
    assert main([*base, "--workers", "2"]) == 2
    assert "--workers: only applies with --executor ray" in capsys.readouterr().err
    assert main([*base, "--resume"]) == 2
    assert "--resume: needs --out" in capsys.readouterr().err
    assert main([*base, "--resume", "--out", str(tmp_path)]) == 2
    assert "--shard-size" in capsys.readouterr().err


def test_sharded_compare_equals_the_unsharded_one(pair, tmp_path):
    assert main([*compare_args(pair), "--out", str(tmp_path / "whole")]) == 0
    assert main([*compare_args(pair), "--out", str(tmp_path / "sharded"), "--shard-size", "20"]) == 0
    sharded = without_run(tmp_path / "sharded" / "comparison.json")
    assert_close(sharded, without_run(tmp_path / "whole" / "comparison.json"))
    assert sharded["correlation"]["n_samples"] > 500


def test_a_killed_comparison_resumes_from_its_shard_states(pair, tmp_path):
    def cli(*extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "audit", *compare_args(pair), "--shard-size", "32", *extra],
                              env=env or one_thread(), capture_output=True, text=True, timeout=300)

    assert cli("--out", str(tmp_path / "clean")).returncode == 0
    out = tmp_path / "killed"
    killed = cli("--out", str(out), env=one_thread(NEURON_AUDIT_FAULT_KILL_DRIVER="2"))
    assert killed.returncode == -9  # SIGKILL right after the 2nd of 4 shard states was saved
    assert len(list((out / STATE_DIR).rglob("shard-*.npz"))) == 2 and not (out / "comparison.json").exists()
    changed = cli("--out", str(out), "--resume", "--baseline-stride", "3")
    assert changed.returncode == 2 and "other settings (compare)" in changed.stderr
    assert cli("--out", str(out), "--resume").returncode == 0
    assert_close(without_run(out / "comparison.json"), without_run(tmp_path / "clean" / "comparison.json"))
    execution = json.loads((out / "comparison.json").read_text())["run"]["execution"]
    assert execution["resumed_shards"] == 2 and not (out / STATE_DIR).exists()


def test_explain_json_writes_one_file_and_keeps_its_folder(planted_folder, tmp_path):
    neighbour = tmp_path / "notes.txt"
    neighbour.write_text("mine")
    reference = tmp_path / "reference.txt"
    reference.write_text("\n".join(tiny.sentences(30, seed=5, insert=tiny.CONCEPT)))
    args = ["explain", "--model", str(planted_folder), "--neuron", "L0.N3", "--reference", str(reference),
            "--top", "4", "--no-progress"]
    assert main([*args, "--json", str(tmp_path / "one.json")]) == 0
    assert neighbour.read_text() == "mine" and (tmp_path / "one.json").is_file()
    assert main([*args, "--json", str(tmp_path)]) == 2
    assert main([*args, "--resume"]) == 2
