"""`neuron-audit explain` on a planted neuron, `--corpus` streaming, and `search` over a results.json."""

from __future__ import annotations

import json

import pytest

from audit.cli import main
from tests import tiny
from tests.conftest import PLANTED_NEURON, POLY_NEURON


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    reference = folder / "reference.txt"
    reference.write_text("\n".join(tiny.sentences(40, seed=31)), encoding="utf-8")
    lines = tiny.sentences(30, seed=32) + tiny.sentences(20, seed=33, insert=tiny.CONCEPT)
    path = folder / "corpus.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}) for t in lines), encoding="utf-8")
    return reference, path


def test_explain_one_neuron_from_a_jsonl_corpus(planted_folder, corpus, tmp_path, capsys):
    reference, path = corpus
    out = tmp_path / "explained.json"
    code = main(["explain", "--model", str(planted_folder), "--neuron", f"L0.N{PLANTED_NEURON}", "--corpus", str(path),
                 "--reference", str(reference), "--top", "6", "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and f"L0.N{PLANTED_NEURON}" in printed and "detection: right in" in printed
    assert "causal: " in printed
    record = json.loads(out.read_text())
    assert record["scores"]["f1"]["value"] is not None and record["causal"]["n_firing"] > 0
    assert record["texts_seen"] == 90
    assert {t["token"] for t in record["top_tokens"]} <= set(tiny.CONCEPT)
    assert all(c["key"].startswith("corpus.jsonl:") for c in record["contexts"])


@pytest.mark.parametrize("neuron, message", [("L0-N3", "expected a name like L2.N693"),
                                             ("L9.N0", "outside the model")])
def test_explain_rejects_bad_neuron_names(planted_folder, corpus, neuron, message, capsys):
    code = main(["explain", "--model", str(planted_folder), "--neuron", neuron, "--reference", str(corpus[0])])
    assert code == 2 and message in capsys.readouterr().err


def test_search_finds_neurons_by_token(planted_folder, concept_yaml, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--out", str(out),
                 "--no-progress", "--top-k", "5", "--no-pdf", "--no-ablation"]) == 0
    result = json.loads((out / "results.json").read_text())
    cards = (out / "report.html").read_text()
    assert "Graph (N2G) in whole words" in cards and "<svg" in cards
    capsys.readouterr()
    assert main(["search", str(out / "results.json"), "--token", "arsenic"]) == 0
    printed = capsys.readouterr().out
    assert f"L0.N{PLANTED_NEURON}" in printed and "activates on 'arsenic'" in printed
    assert main(["search", str(out / "results.json"), "--token", "zebra"]) == 0
    assert "no reported neuron" in capsys.readouterr().out
    names = {n["name"] for n in result["probesets"][0]["neurons"]}
    assert {f"L0.N{PLANTED_NEURON}", f"L0.N{POLY_NEURON}"} <= names
