"""CLI options added for the multilingual audit on large-vocabulary models."""

from __future__ import annotations

import json

from audit.cli import main

FAST = ["--no-progress", "--no-pdf", "--no-ablation", "--no-explain", "--top-k", "3"]


def test_no_neuron_classes_skips_the_vocabulary_pass(planted_folder, concept_yaml, tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--out", str(out),
                 "--no-neuron-classes", *FAST]) == 0
    result = json.loads((out / "results.json").read_text())
    assert "neuron_classes" not in result and result["run"]["settings"]["neuron_classes"] is False
    assert "neuron_classes" not in result["run"]["timings_s"]
