"""The Ray executor on a local instance started by the tests (2 CPUs, no dashboard): same results as a
local run, a killed worker's shard retried elsewhere, workers that must hold the driver's weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audit.cli import main
from audit.errors import AuditInputError
from audit.execution import faults
from audit.execution.executor import Executor
from tests import tiny
from tests.execution.common import assert_close, compare_args, without_run

ray = pytest.importorskip("ray")

FAST = ["--no-progress", "--top-k", "3", "--no-pdf", "--null-sets", "5", "--ablation-texts", "8"]


@pytest.fixture(scope="module")
def cluster():
    from audit.execution.ray_executor import _import_ray

    import torch

    _import_ray(local=True)  # loopback-only, as the CLI starts it
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    # a worker runs torch on its one CPU; the local runs compared with it do the same, since float32 kernels
    # split their sums by thread count and the last bits (and then near-tied ranks) follow
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    ray.shutdown()


def test_ray_run_equals_the_local_run(cluster, planted_folder, concept_yaml, tmp_path):
    args = ["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), *FAST]
    assert main([*args, "--out", str(tmp_path / "local")]) == 0
    assert main([*args, "--out", str(tmp_path / "ray"), "--executor", "ray", "--workers", "2",
                 "--shard-size", "8"]) == 0
    assert_close(without_run(tmp_path / "ray" / "results.json"), without_run(tmp_path / "local" / "results.json"))
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
    assert str(error.value).startswith(f"worker on node {node_name()}: model {planted_folder} there has weights")
    with pytest.raises(AuditInputError) as error:
        RayExecutor(ModelSpec(model=str(tmp_path / "absent")), expected_sha256="0" * 64, workers=1, progress=False)
    assert f"worker on node {node_name()}: " in str(error.value) and "absent" in str(error.value)


def test_more_workers_than_the_cluster_offers_is_an_input_error(cluster, planted_folder):
    from audit.execution.ray_executor import ModelSpec, RayExecutor

    with pytest.raises(AuditInputError, match="--workers: 5 asked for, but the cluster offers 2 CPUs"):
        RayExecutor(ModelSpec(model=str(planted_folder)), expected_sha256="0" * 64, workers=5, progress=False)


def test_ray_compare_and_explain_equal_the_local_ones(cluster, pair, planted_folder, tmp_path):
    """Workers that hold both models correlate shards of whole chunks: the same comparison as one local pass
    (up to the order of the float64 additions; every process runs one thread); explanations' top contexts and
    held-out sample merge to exactly the local search's."""
    ray_args = ["--executor", "ray", "--workers", "2", "--shard-size", "24"]
    assert main([*compare_args(pair), "--out", str(tmp_path / "local")]) == 0
    assert main([*compare_args(pair), "--out", str(tmp_path / "ray"), *ray_args]) == 0
    assert_close(without_run(tmp_path / "ray" / "comparison.json"),
                 without_run(tmp_path / "local" / "comparison.json"))
    execution = json.loads((tmp_path / "ray" / "comparison.json").read_text())["run"]["execution"]
    assert execution["executor"] == "ray" and execution["workers"] == 2
    _, _, corpus = pair
    explain = ["explain", "--model", str(planted_folder), "--neuron", "L0.N3", "--corpus", str(corpus), "--top", "6",
               "--no-progress"]
    assert main([*explain, "--json", str(tmp_path / "local.json")]) == 0
    assert main([*explain, "--json", str(tmp_path / "ray.json"), *ray_args]) == 0
    local, remote = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("local", "ray"))
    for record in (local, remote):
        record.pop("timings_s", None)
    assert remote == local and local["texts_seen"] == 1203 + 120


def test_killed_workers_shards_are_retried_for_compare_and_contexts(cluster, pair, tmp_path, monkeypatch):
    from audit.execution.ray_executor import ModelSpec, RayExecutor
    from audit.model.loading import load_model

    a_folder, b_folder, corpus = pair
    a, b = load_model(str(a_folder), device="cpu"), load_model(str(b_folder), device="cpu")
    texts = corpus.read_text().splitlines()
    settings = {"align": "tokens", "batch_size": 4, "max_length": 32, "stride": 2, "precision": "bfloat16"}
    monkeypatch.setenv(faults.KILL_SHARD, f"1:{tmp_path / 'killed'}")
    executor = RayExecutor([ModelSpec(model=str(a_folder)), ModelSpec(model=str(b_folder))],
                           expected_sha256=[a.weights_sha256, b.weights_sha256], workers=2, shard_size=32,
                           progress=False)
    try:
        correlated = executor.correlate(a, b, texts, [(0, 0), (1, 1)], settings=settings)
        assert (tmp_path / "killed").exists()  # the worker running shard 1 was SIGKILLed mid-shard
        (tmp_path / "killed").unlink()  # arm the fault again: the worker that starts shard 1 of the next job
        items = [(f"c:{i}", t) for i, t in enumerate(texts)]
        contexts = executor.contexts(b, iter(items), [(0, 3), (1, 7)], k=5, sample=10, seed=0, batch_size=4,
                                     max_length=32)
        assert (tmp_path / "killed").exists()
    finally:
        executor.close()
    clean = Executor(shard_size=32, progress=False)
    expected = clean.correlate(a, b, texts, [(0, 0), (1, 1)], settings=settings).to_arrays()
    for key, value in correlated.to_arrays().items():
        if value.dtype.kind == "f":
            assert np.abs(value - expected[key]).max() <= 1e-12 * max(np.abs(expected[key]).max(), 1.0), key
    local = Executor(progress=False).contexts(b, iter(items), [(0, 3), (1, 7)], k=5, sample=10, seed=0,
                                              batch_size=4, max_length=32)
    assert contexts.top == local.top and contexts.sample == local.sample
