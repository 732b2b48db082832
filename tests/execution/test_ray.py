"""The Ray executor on a local instance started by the tests (2 CPUs, no dashboard): same results as a
local run, a killed worker's shard retried elsewhere, workers that must hold the driver's weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from audit.cli import main
from audit.errors import AuditInputError
from audit.execution import faults
from audit.execution.executor import Executor
from tests import tiny

ray = pytest.importorskip("ray")

FAST = ["--no-progress", "--top-k", "3", "--no-pdf", "--null-sets", "5", "--ablation-texts", "8"]


@pytest.fixture(scope="module")
def cluster():
    from audit.execution.ray_executor import _import_ray

    _import_ray(local=True)  # loopback-only, as the CLI starts it
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def without_run(path: Path) -> dict:
    result = json.loads(path.read_text())
    result.pop("run")
    return result


def test_ray_run_equals_the_local_run(cluster, planted_folder, concept_yaml, tmp_path):
    args = ["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), *FAST]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2",
                 "--shard-size", "8"]) == 0
    assert without_run(tmp_path / "ray" / "results.json") == without_run(tmp_path / "local" / "results.json")
    execution = json.loads((tmp_path / "ray" / "results.json").read_text())["run"]["execution"]
    assert execution["executor"] == "ray" and execution["workers"] == 2 and execution["nodes"]


def test_a_killed_worker_shard_is_retried_elsewhere(cluster, planted_model, planted_folder, tmp_path, monkeypatch):
    from audit.execution.ray_executor import ModelSpec, RayExecutor

    marker = tmp_path / "killed"
    monkeypatch.setenv(faults.KILL_SHARD, f"2:{marker}")
    texts = tiny.sentences(60, seed=9, length=(2, 16))
    settings = {"batch_size": 4, "max_length": 16, "token_moments": True, "outputs": True}
    executor = RayExecutor(ModelSpec(model=str(planted_folder)), expected_sha256=planted_model.weights_sha256,
                           workers=2, shard_size=8, progress=False)
    try:
        result = executor.harvest(planted_model, texts, settings=settings, description="t")
    finally:
        executor.close()
    assert marker.exists()  # the worker running shard 2 was SIGKILLed mid-shard
    clean = Executor(shard_size=8, progress=False).harvest(planted_model, texts, settings=settings, description="t")
    for field in ("max", "mean", "n_tokens", "moments", "positive"):
        assert np.array_equal(getattr(result, field), getattr(clean, field)), field
    assert np.array_equal(result.outputs["loglik"], clean.outputs["loglik"])


def test_workers_must_hold_the_drivers_weights(cluster, planted_folder, tmp_path):
    from audit.execution.ray_executor import ModelSpec, RayExecutor, node_name

    with pytest.raises(AuditInputError) as error:
        RayExecutor(ModelSpec(model=str(planted_folder)), expected_sha256="0" * 64, workers=1, progress=False)
    assert str(error.value).startswith(f"worker on node {node_name()}: --model {planted_folder} there has weights")
    with pytest.raises(AuditInputError) as error:
        RayExecutor(ModelSpec(model=str(tmp_path / "absent")), expected_sha256="0" * 64, workers=1, progress=False)
    assert f"worker on node {node_name()}: --model" in str(error.value) and "absent" in str(error.value)


def test_more_workers_than_the_cluster_offers_is_an_input_error(cluster, planted_folder):
    from audit.execution.ray_executor import ModelSpec, RayExecutor

    with pytest.raises(AuditInputError, match="--workers: 5 asked for, but the cluster offers 2 CPUs"):
        RayExecutor(ModelSpec(model=str(planted_folder)), expected_sha256="0" * 64, workers=5, progress=False)
