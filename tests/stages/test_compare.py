"""Checkpoint comparison end to end on tiny GPT-2s with planted neurons: matching, audit diff, policy, render."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import yaml

from audit.cli import main
from audit.results.schema import comparison_schema
from tests import tiny
from tests.conftest import PLANTED_NEURON
from tests.model.test_correlate import _permuted
from tests.stages.test_paired import gender_items

FAST = ["--no-progress", "--top-k", "3", "--no-pdf", "--no-ablation", "--baseline-stride", "2", "--top-changed", "5"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tokenizer):
    """The planted model (A), a permuted copy (same function), and a copy whose concept neuron is re-drawn."""
    plants = [tiny.Plant(PLANTED_NEURON, (tuple(tiny.CONCEPT),)), tiny.Plant(5, (tuple(tiny.FEMALE),))]
    model = tiny.build_planted_gpt2(tokenizer, plants)
    twin, orders = _permuted(model, seed=4)
    lost = copy.deepcopy(model)
    with torch.no_grad():
        weight = lost.transformer.h[0].mlp.c_fc.weight
        weight[:, PLANTED_NEURON] = torch.randn(weight.shape[0], generator=torch.Generator().manual_seed(1)) * 0.02
        lost.transformer.h[0].mlp.c_fc.bias[PLANTED_NEURON] = 0.0
    root = tmp_path_factory.mktemp("compare")
    return {name: tiny.save(m, tokenizer, root / name) for name, m in
            (("a", model), ("permuted", twin), ("lost", lost))}, orders


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare-inputs")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(tiny.sentences(150, seed=21, insert=tiny.CONCEPT + tiny.FEMALE + tiny.MALE,
                                               length=(4, 12))))
    concept = {"name": "planted", "description": "d", "kind": "concept", "concept": "planted concept",
               "positive": tiny.sentences(30, seed=1, insert=tiny.CONCEPT), "negative": tiny.sentences(30, seed=2)}
    paired = {"name": "gender", "description": "d", "kind": "paired", "groups": ["female", "male"],
              "items": gender_items(30, seed=3)}
    probes = root / "probes.yaml"
    probes.write_text(yaml.safe_dump_all([concept, paired], sort_keys=False))
    return corpus, probes


def _compare(a, b, inputs, out, *extra) -> tuple[int, dict]:
    corpus, probes = inputs
    code = main(["compare", "--model-a", str(a), "--model-b", str(b), "--corpus", str(corpus), "--probeset",
                 str(probes), "--out", str(out), *FAST, *extra])
    return code, json.loads((out / "comparison.json").read_text())


def test_permuted_copy_keeps_every_finding_through_the_matching(folders, inputs, tmp_path):
    (paths, orders) = folders
    code, result = _compare(paths["a"], paths["permuted"], inputs, tmp_path / "out")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["comparison.json", "report.html"]
    assert result["correlation"]["alignment"] == "tokens" and result["correlation"]["layer_mode"] == "same"
    concept = next(d for d in result["probesets"] if d["name"] == "planted")
    top = concept["pairs_a"][0]
    partner = int(list(orders[0]).index(PLANTED_NEURON))
    assert (top["name"], top["partner_name"]) == (f"L0.N{PLANTED_NEURON}", f"L0.N{partner}")
    assert top["r"] == pytest.approx(1.0, abs=1e-5) and top["delta"] == pytest.approx(0.0, abs=1e-6)
    assert concept["became_flagged"] == 0 and concept["stopped_flagged"] == 0
    assert concept["overlap"] == concept["n_flagged_a"] == concept["n_flagged_b"] >= 1
    gender = next(d for d in result["probesets"] if d["name"] == "gender")
    assert gender["output"]["delta"] == pytest.approx(0.0, abs=1e-5)
    assert all(abs(p["delta"]) < 1e-6 for p in gender["pairs_a"])
    assert all(l["mean_r"] > 0.9999 for l in result["layers_a"])
    html = (tmp_path / "out" / "report.html").read_text()
    assert f"L0.N{PLANTED_NEURON}" in html and f"L0.N{partner}" in html and "Persistence per layer" in html
    # verdict first and a reproduce-and-sign page, as in audits; the default comparison policy was applied
    assert html.index("Verdict</h2>") < html.index("Summary of what changed") < html.index("Reproduce and sign</h2>")
    assert result["policy"]["default"] and result["run"]["command_line"].startswith("neuron-audit compare ")
    assert main(["render", str(tmp_path / "out" / "comparison.json"), "--out", str(tmp_path / "named"),
                 "--name-a", "base", "--name-b", "tuned", "--reviewer", "R. Viewer"]) == 0
    named = (tmp_path / "named" / "report.html").read_text()
    assert "<strong>A</strong> base → <strong>B</strong> tuned" in named and "<td>R. Viewer</td>" in named
    from tests.results.pdftext import problems

    assert problems(tmp_path / "named" / "report.pdf") == []  # no near-empty pages, joins or split ids


def test_a_new_concept_neuron_fails_the_policy_with_exit_3(folders, inputs, tmp_path, capsys):
    paths, _ = folders
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [
        {"probeset": "planted", "metric": "new_selective_neurons", "max": 0},
        {"probeset": "gender", "metric": "output_disparity_change", "max": 0.02},
        {"probeset": "planted", "metric": "flagged_overlap", "min": 0.0}]}))
    # A lost its concept neuron; B (the planted model) has it: one neuron became concept-selective in B
    code, result = _compare(paths["lost"], paths["a"], inputs, tmp_path / "out", "--policy", str(policy),
                            "--fail-on-policy")
    assert code == 3
    concept = next(d for d in result["probesets"] if d["name"] == "planted")
    assert concept["became_flagged"] >= 1
    assert f"L0.N{PLANTED_NEURON}" in [p["name"] for p in concept["new_in_b"]]
    lost = next(c for c in result["changed"] if c["name"] == f"L0.N{PLANTED_NEURON}")
    assert not lost["persistent"] and lost["diagonal_r"] < 0.5
    verdicts = {c["metric"]: c["verdict"] for c in result["policy"]["checks"]}
    assert verdicts["new_selective_neurons"] == "FAIL"
    assert "policy FAIL" in capsys.readouterr().out
    # re-rendering validates against the published schema and evaluates the policy again
    assert main(["render", str(tmp_path / "out" / "comparison.json"), "--out", str(tmp_path / "again"), "--no-pdf",
                 "--policy", str(policy), "--fail-on-policy"]) == 3
    broken = result | {"layers_a": [{"layer": "zero"}]}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert main(["render", str(tmp_path / "broken.json"), "--out", str(tmp_path / "bad"), "--no-pdf"]) == 2
    assert "layers_a[0]" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_bad_compare_input_is_one_line_and_exit_2(folders, inputs, tmp_path, capsys):
    paths, _ = folders
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [{"probeset": "planted", "metric": "output_disparity", "max": 0}]}))
    for args, needle in (
            (["--model-b", str(tmp_path / "missing")], "--model-b"),
            (["--corpus", str(tmp_path / "none.txt")], "none.txt"),
            (["--policy", str(policy)], "metric"),
            (["--layers", "diagonal"], "--layers")):
        argv = ["compare", "--model-a", str(paths["a"]), "--model-b", str(paths["permuted"]), "--no-audit",
                "--out", str(tmp_path / "out"), *FAST]
        for option, value in zip(args[::2], args[1::2]):
            if option in argv:
                argv[argv.index(option) + 1] = value
            else:
                argv += [option, value]
        assert main(argv) == 2, args
        err = capsys.readouterr().err
        assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_comparison_schema_is_shipped_and_printed(capsys):
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "audit" / "results" / "compare.schema.json"
    assert json.loads(shipped.read_text()) == comparison_schema(), \
        "regenerate: neuron-audit schema --compare > " + str(shipped)
    assert main(["schema", "--compare"]) == 0
    assert json.loads(capsys.readouterr().out)["title"].startswith("neuron-audit comparison.json")


def test_models_of_different_architecture_and_size_compare_all_pairs(tokenizer):
    from audit.config import CompareConfig, RunConfig
    from audit.model.loading import load_model
    from audit.results.record import ABSENT
    from audit.stages.compare import run_compare

    gpt2 = load_model(tiny.build_gpt2(tokenizer, n_layer=3, n_inner=128), tokenizer=tokenizer, device="cpu")
    bert_tokenizer = tiny.build_tokenizer(bert_style=True)
    bert = load_model(tiny.build_bert(bert_tokenizer), tokenizer=bert_tokenizer, device="cpu")
    corpus = tiny.sentences(60, seed=5)
    result = run_compare(gpt2, bert, corpus, corpus_name="tiny", corpus_sha256="0" * 64,
                         config=RunConfig(progress=False),
                         compare=CompareConfig(memory_budget_mb=16, layers="all", baseline_stride=1))
    settings = result.correlation
    assert settings.alignment == "tokens"  # same words; [CLS]/[SEP] are not real tokens
    assert settings.layer_pairs == [[a, b] for a in range(3) for b in range(2)] and settings.blocks == 1
    assert [len(row) for row in result.matches_a.r] == [128] * 3
    assert [len(row) for row in result.matches_b.r] == [96] * 2
    assert all(layer.n_neurons == 128 for layer in result.layers_a) and len(result.layers_b) == 2
    assert all(0 <= layer.share_persistent <= 1 for layer in result.layers_a + result.layers_b)
    depth = run_compare(gpt2, bert, corpus, corpus_name="tiny", corpus_sha256="0" * 64,
                        config=RunConfig(progress=False), compare=CompareConfig(memory_budget_mb=16))
    assert depth.correlation.layer_mode == "depth"  # each layer with the other's nearest relative depth
    assert depth.correlation.layer_pairs == [[0, 0], [1, 0], [2, 1]]
    assert depth.layers_a[0].mean_diagonal_r is ABSENT  # no neuron-i-versus-neuron-i for different widths


def test_encoders_compare_counterfactual_sensitivity_on_the_same_control_texts(tmp_path):
    import copy

    from audit.config import CompareConfig, RunConfig
    from audit.model.loading import load_model
    from audit.stages.compare import run_compare
    from tests.stages.test_paired import gender_items, write

    bert_tokenizer = tiny.build_tokenizer(bert_style=True)
    module = tiny.build_bert(bert_tokenizer)
    a = load_model(module, tokenizer=bert_tokenizer, device="cpu")
    same = load_model(copy.deepcopy(module), tokenizer=bert_tokenizer, device="cpu")
    other = load_model(tiny.build_bert(bert_tokenizer, seed=1), tokenizer=bert_tokenizer, device="cpu")
    sets = write(tmp_path, {"name": "gender", "description": "d", "kind": "paired", "groups": ["female", "male"],
                            "items": gender_items(30, seed=2)})
    config = RunConfig(progress=False, ablation=False, bootstrap_resamples=200, top_k=3)
    outputs = {}
    for name, b in (("same", same), ("other", other)):
        result = run_compare(a, b, tiny.sentences(30, seed=5), corpus_name="tiny", corpus_sha256="0" * 64,
                             probesets=sets, config=config, compare=CompareConfig(memory_budget_mb=16))
        (diff,) = result.probesets
        outputs[name] = diff.output
        audit_a = result.audits.a.probesets[0].disparity.output.sensitivity
    assert outputs["same"].metric.startswith("largest excess embedding shift")
    assert outputs["same"].delta == pytest.approx(0.0, abs=1e-6)
    (row,) = audit_a.rows  # the diff's A score is the audit's own excess (the same items and control texts)
    assert outputs["same"].a == pytest.approx(row.excess, abs=1e-4)
    assert abs(outputs["other"].delta) > 1e-4 and outputs["other"].a == pytest.approx(outputs["same"].a)
    low, high = outputs["other"].ci95
    assert low <= outputs["other"].delta <= high
