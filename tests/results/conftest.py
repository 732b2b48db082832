"""One small audit (a concept and a paired set, with a policy) shared by the report and contract tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from audit.cli import main
from tests.stages.test_paired import gender_items

FAST = ["--no-progress", "--top-k", "3", "--null-sets", "5", "--ablate-k", "2", "--ablation-texts", "8"]


@pytest.fixture(scope="module")
def audit_dir(tmp_path_factory, planted_folder, concept_yaml) -> Path:
    root = tmp_path_factory.mktemp("report")
    gender = {"name": "gender", "description": "d", "kind": "paired", "groups": ["female", "male"],
              "items": gender_items(20, seed=7)}
    (root / "gender.yaml").write_text(yaml.safe_dump(gender))
    policy = {"checks": [{"probeset": "planted", "metric": "selective_neurons", "max": 100000},
                         {"probeset": "gender", "metric": "output_disparity", "max": 10.0}]}
    (root / "policy.yaml").write_text(yaml.safe_dump(policy))
    out = root / "out"
    assert main(["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), str(root / "gender.yaml"),
                 "--out", str(out), "--policy", str(root / "policy.yaml"), *FAST]) == 0
    return out
