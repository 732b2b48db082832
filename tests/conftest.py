"""Shared fixtures: tiny models built in-process, saved to local folders like a user's checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests import tiny  # noqa: E402

PLANTED_NEURON = 17
POLY_NEURON = 42


@pytest.fixture(scope="session")
def tokenizer():
    return tiny.build_tokenizer()


@pytest.fixture(scope="session")
def planted_folder(tmp_path_factory, tokenizer) -> Path:
    """A tiny GPT-2 with neuron L0.N17 reading the concept words (and L0.N42 reading two concepts)."""
    plants = [tiny.Plant(PLANTED_NEURON, (tuple(tiny.CONCEPT),)),
              tiny.Plant(POLY_NEURON, (tuple(tiny.CONCEPT[:3]), tuple(tiny.SECOND)))]
    model = tiny.build_planted_gpt2(tokenizer, plants)
    return tiny.save(model, tokenizer, tmp_path_factory.mktemp("planted-gpt2"))


@pytest.fixture(scope="session")
def planted_model(planted_folder):
    from audit.model.loading import load_model

    return load_model(str(planted_folder), device="cpu")


@pytest.fixture(scope="session")
def concept_yaml(tmp_path_factory) -> Path:
    """A concept probe set for the planted model: positives hold one concept word, negatives none."""
    document = {"name": "planted", "description": "Planted concept words versus ordinary sentences.",
                "kind": "concept", "concept": "planted concept",
                "positive": tiny.sentences(40, seed=1, insert=tiny.CONCEPT),
                "negative": tiny.sentences(40, seed=2)}
    path = tmp_path_factory.mktemp("probes") / "planted.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def audited(model, probesets, config) -> dict:
    """Run an audit and return exactly what results.json would hold, checked against the published schema."""
    from audit.results.io import to_json
    from audit.results.schema import validate_results
    from audit.stages.audit import run_audit

    result = to_json(run_audit(model, probesets, config))
    validate_results(result, where="results.json")
    return result


@pytest.fixture(scope="session")
def small_report(tmp_path_factory, planted_folder, concept_yaml) -> Path:
    """One quick complete run (no ablation, no PDF): a valid report folder for render and fault tests."""
    from audit.cli import main

    out = tmp_path_factory.mktemp("small-report") / "out"
    assert main(["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--out", str(out),
                 "--no-ablation", "--no-pdf", "--no-progress", "--top-k", "3"]) == 0
    return out


@pytest.fixture(scope="session")
def small_outputs(tmp_path_factory, planted_folder, tokenizer) -> dict[str, Any]:
    """A results.json (concept + paired sets, explanations on; model A's audit) and a comparison.json of the
    planted model against a re-drawn copy, as the tool writes them (dicts, and files under ``root``), plus a
    policy for each; for the fuzzer and the bad-input table."""
    from audit.config import CompareConfig, RunConfig
    from audit.model.loading import load_model
    from audit.probes.probeset import load_probesets
    from audit.results.io import dumps
    from audit.stages.compare import run_compare
    from tests.stages.test_paired import gender_items

    root = tmp_path_factory.mktemp("small-outputs")
    concept = {"name": "planted", "description": "d", "kind": "concept", "concept": "c",
               "positive": tiny.sentences(16, seed=1, insert=tiny.CONCEPT), "negative": tiny.sentences(16, seed=2)}
    paired = {"name": "gender", "description": "d", "kind": "paired", "groups": ["female", "male"],
              "items": gender_items(12, seed=3)}
    (root / "sets.yaml").write_text(yaml.safe_dump_all([concept, paired], sort_keys=False))
    (root / "reference.txt").write_text("\n".join(tiny.sentences(12, seed=22)))
    sets = load_probesets([root / "sets.yaml"])
    config = RunConfig(progress=False, ablation=False, top_k=3, bootstrap_resamples=100,
                       reference=str(root / "reference.txt"))
    model_a = load_model(str(planted_folder), device="cpu")
    other = tiny.build_planted_gpt2(tokenizer, [tiny.Plant(PLANTED_NEURON, (tuple(tiny.CONCEPT),))], seed=3)
    model_b = load_model(other, tokenizer=tokenizer, device="cpu")
    comparison = run_compare(model_a, model_b, tiny.sentences(40, seed=21, insert=tiny.CONCEPT),
                             corpus_name="tiny", corpus_sha256="0" * 64, probesets=sets, config=config,
                             compare=CompareConfig(memory_budget_mb=16, baseline_stride=2, top_changed=5))
    results = comparison.audits.a
    files = {"results": json.loads(dumps(results)), "comparison": json.loads(dumps(comparison))}
    for name, document in files.items():
        (root / f"{name}.json").write_text(json.dumps(document))
    (root / "policy.yaml").write_text(
        "checks:\n  - {probeset: planted, metric: selective_neurons, max: 3}\n"
        "  - {probeset: gender, metric: output_disparity, max: 0.5}\n"
        "  - {probeset: gender, metric: preference_bias, max: 0.5}\n"
        "  - {probeset: gender, metric: group_selective_neurons, max: 5}\n")
    (root / "compare-policy.yaml").write_text(
        "checks:\n  - {probeset: planted, metric: new_selective_neurons, max: 3}\n"
        "  - {probeset: gender, metric: output_disparity_change, max: 0.5}\n"
        "  - {probeset: planted, metric: flagged_overlap, min: 0.5}\n")
    return {"root": root, **files}
