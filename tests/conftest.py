"""Shared fixtures: tiny models built in-process, saved to local folders like a user's checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

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
