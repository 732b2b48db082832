"""The typed results contract: round trips, the published JSON Schema, and one-line JSON-path errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from audit.cli import main
from audit.errors import AuditInputError
from audit.results.contract import (Ablation, AuditResult, ConceptSection, Histogram, PairedSection,
                                    SkippedAblation)
from audit.results.io import dumps, load_results, parse_results
from audit.results.schema import results_schema, validate_results

SHIPPED = Path(__file__).resolve().parents[2] / "audit" / "results" / "results.schema.json"


@pytest.fixture(scope="module")
def results(audit_dir) -> dict:
    return json.loads((audit_dir / "results.json").read_text())


def test_shipped_schema_is_the_generated_one_and_valid():
    assert json.loads(SHIPPED.read_text()) == results_schema(), "regenerate: neuron-audit schema > " + str(SHIPPED)
    jsonschema.Draft202012Validator.check_schema(results_schema())


def test_schema_command_prints_it(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == results_schema()


def test_round_trip_is_lossless_and_typed(results, audit_dir):
    result = load_results(audit_dir / "results.json")
    assert isinstance(result, AuditResult)
    concept, paired = result.probesets
    assert isinstance(concept, ConceptSection) and isinstance(paired, PairedSection)
    assert isinstance(concept.ablation, (Ablation, SkippedAblation))
    assert isinstance(concept.neurons[0].histogram, Histogram)
    assert concept.neurons[0].auroc == results["probesets"][0]["neurons"][0]["auroc"]
    assert json.loads(dumps(result)) == results


def test_unknown_keys_survive_a_round_trip(results):
    extended = copy.deepcopy(results)
    extended["made_by_a_newer_version"] = {"x": 1}
    extended["probesets"][0]["neurons"][0]["new_statistic"] = 0.5
    result = parse_results(json.dumps(extended), where="results.json")
    assert result.probesets[0].neurons[0].extra == {"new_statistic": 0.5}
    assert json.loads(dumps(result)) == extended


def _broken(results: dict, edit) -> dict:
    data = copy.deepcopy(results)
    edit(data)
    return data


CASES = [
    (lambda d: d["probesets"][0]["neurons"][1].__setitem__("auroc", "high"),
     "probesets[0].neurons[1].auroc: expected number or null, got string"),
    (lambda d: d["probesets"][1]["disparity"]["counts"].pop("q_only"), "probesets[1].disparity.counts.q_only: missing"),
    (lambda d: d["probesets"][1].__setitem__("kind", "other"),
     "probesets[1].kind: expected 'concept' or 'paired', got 'other'"),
    (lambda d: d.__setitem__("schema_version", "2"), "schema_version: expected '1', got '2'"),
    (lambda d: d["model"].pop("weights_sha256"), "model.weights_sha256: missing"),
    (lambda d: d["probesets"][0]["ablation"]["null"].__setitem__("values", [0.1, "x"]),
     "probesets[0].ablation.null.values[1]: expected number or null, got string"),
    (lambda d: d["probesets"][0]["neurons"][0]["histogram"].__setitem__("positive", {"a": 1}),
     "probesets[0].neurons[0].histogram.positive: expected array, got object"),
    (lambda d: d["probesets"][0]["summary"].__setitem__("n_significant", 1.5),
     "probesets[0].summary.n_significant: expected integer, got number"),
    (lambda d: d["probesets"][0].__setitem__("neurons", None), "probesets[0].neurons: expected array, got null"),
    (lambda d: d.pop("caveats"), "caveats: missing"),
]


@pytest.mark.parametrize("edit, message", CASES)
def test_schema_errors_name_the_json_path(results, edit, message):
    with pytest.raises(AuditInputError) as error:
        validate_results(_broken(results, edit), where="results.json")
    assert str(error.value) == f"results.json: {message}"


def test_render_rejects_a_hand_broken_file_in_one_line(results, tmp_path, capsys):
    broken = tmp_path / "results.json"
    broken.write_text(json.dumps(_broken(results, CASES[0][0])))
    out = tmp_path / "report"
    assert main(["render", str(broken), "--out", str(out), "--no-pdf"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"neuron-audit: error: {broken}: probesets[0].neurons[1].auroc: expected number or null, got string"
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("[1, 2]", "expected a JSON object at the top level"),
    ("{not json", "not a readable results.json"),
])
def test_unreadable_results_are_input_errors(text, message):
    with pytest.raises(AuditInputError, match=message):
        parse_results(text, where="results.json")
