"""--junit and --sarif: validated against the Apache Ant JUnit XSD and the official SARIF 2.1.0 JSON Schema
(both bundled in tests/schemas with their licences), from run, render and compare; bad paths fail first."""

from __future__ import annotations

import copy
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema
import yaml

from audit.cli import main
from audit.results.exports import junit_xml, rule_ids, sarif_json
from tests.results.conftest import FAST
from tests.stages.test_compare import _compare, folders, inputs  # noqa: F401 (fixtures)

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@pytest.fixture(scope="module")
def junit_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(SCHEMAS / "JUnit.xsd")


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Draft4Validator:
    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


def assert_valid_sarif(validator, log: dict) -> None:
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:3]]


@pytest.fixture(scope="module")
def results(audit_dir) -> dict:
    return json.loads((audit_dir / "results.json").read_text())


def _with_checks(results: dict) -> dict:
    """Today's PASS/FAIL records next to the extended ones (value/ci/unit/threshold/outcome, NOT EVALUATED)."""
    result = copy.deepcopy(results)
    result["policy"]["checks"] = [
        {"name": "planted: selective_neurons max 0", "probeset": "planted", "metric": "selective_neurons",
         "bound": "max", "limit": 0, "value": 3.0, "passed": False, "verdict": "FAIL"},
        {"name": "gender: output_disparity max 10.0", "probeset": "gender", "metric": "output_disparity",
         "bound": "max", "limit": 10.0, "value": 0.004, "passed": True, "verdict": "PASS"},
        {"name": "gender <bias> & \"quotes\"\n", "probeset": "gender", "metric": "preference_bias", "bound": "max",
         "limit": 0.05, "value": None, "ci": None, "unit": "share of items", "threshold": "≤ 0.05",
         "outcome": "NOT EVALUATED", "reason": "an encoder scores no sentences", "passed": False,
         "verdict": "NOT EVALUATED", "rationale": "CrowS-Pairs: 0.5 is no preference", "source": "Nangia 2020"},
        {"name": "gender: output_disparity max 0.001", "probeset": "gender", "metric": "output_disparity",
         "bound": "max", "limit": 0.001, "value": 0.004, "ci": [0.002, 0.006], "unit": "nats per token",
         "threshold": "≤ 0.001", "outcome": "FAIL", "passed": False, "verdict": "FAIL"}]
    return result


def test_junit_has_one_case_per_check_and_validates(results, junit_schema):
    text = junit_xml(_with_checks(results), results_path="out/results.json", results_sha256="ab" * 32)
    junit_schema.validate(text)
    suite = ET.fromstring(text)
    assert (suite.tag, suite.get("tests"), suite.get("failures"), suite.get("skipped"), suite.get("errors")) == \
        ("testsuite", "4", "2", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases][:2] == ["planted: selective_neurons max 0", "gender: output_disparity max 10.0"]
    failure = cases[0].find("failure")
    assert "value 3" in failure.get("message") and "threshold ≤ 0" in failure.get("message")
    assert cases[1].find("failure") is None and cases[1].find("skipped") is None
    skipped = cases[2].find("skipped")
    assert skipped.get("message") == "an encoder scores no sentences" and cases[2].get("name") == 'gender <bias> & "quotes"'
    message = cases[3].find("failure").get("message")
    assert "0.004 nats per token (95% CI 0.002 to 0.006)" in message and "≤ 0.001" in message
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["results"] == "out/results.json" and properties["results.sha256"] == "ab" * 32


def test_sarif_has_one_rule_per_check_levels_and_validates(results, sarif_validator):
    log = json.loads(sarif_json(_with_checks(results), results_uri="out/results.json", results_sha256="cd" * 32))
    assert_valid_sarif(sarif_validator, log)
    run = log["runs"][0]
    rules, found = run["tool"]["driver"]["rules"], run["results"]
    assert len(rules) == len(found) == 4 and len({r["id"] for r in rules}) == 4
    assert [r["ruleId"] for r in found] == ["planted/selective_neurons", "gender/output_disparity/1",
                                            "gender/preference_bias", "gender/output_disparity/2"]
    assert [(r["level"], r["kind"]) for r in found] == [("error", "fail"), ("none", "pass"), ("warning", "fail"),
                                                        ("error", "fail")]
    assert "value 3" in found[0]["message"]["text"] and "≤ 0" in found[0]["message"]["text"]
    assert found[2]["properties"]["reason"] == "an encoder scores no sentences"
    assert run["artifacts"][0]["location"]["uri"] == "out/results.json"
    assert run["artifacts"][0]["hashes"]["sha-256"] == "cd" * 32
    assert all(r["locations"][0]["physicalLocation"]["artifactLocation"]["index"] == 0 for r in found)


def test_rule_ids_are_unique_and_stable():
    from audit.results.checks import check_view

    views = [check_view({"probeset": "a b", "metric": "m", "verdict": "PASS"}),
             check_view({"probeset": "a b", "metric": "m", "verdict": "FAIL"}),
             check_view({"probeset": "c", "metric": "m", "verdict": "FAIL"})]
    assert rule_ids(views) == ["a-b/m/1", "a-b/m/2", "c/m"]


def _failing_policy(tmp_path: Path) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [
        {"probeset": "planted", "metric": "selective_neurons", "max": 0},
        {"probeset": "gender", "metric": "output_disparity", "max": 10.0}]}))
    return policy


def test_render_writes_valid_exports_and_keeps_exit_codes(audit_dir, tmp_path, junit_schema, sarif_validator):
    policy = _failing_policy(tmp_path)
    junit, sarif = tmp_path / "ci" / "junit.xml", tmp_path / "ci" / "audit.sarif"
    junit.parent.mkdir()
    junit.write_text("old")  # replaced whole
    args = ["render", str(audit_dir / "results.json"), "--out", str(tmp_path / "out"), "--no-pdf", "--policy",
            str(policy), "--junit", str(junit), "--sarif", str(sarif)]
    assert main(args) == 0  # a failing check without --fail-on-policy: exit code as today
    junit_schema.validate(str(junit))
    assert ET.parse(junit).getroot().get("failures") == "1"
    log = json.loads(sarif.read_text())
    assert_valid_sarif(sarif_validator, log)
    assert [r["level"] for r in log["runs"][0]["results"]] == ["error", "none"]
    uri = log["runs"][0]["artifacts"][0]["location"]["uri"]
    assert uri == "../out/results.json" and (sarif.parent / uri).resolve() == (tmp_path / "out" / "results.json")
    assert sorted(p.name for p in junit.parent.iterdir()) == ["audit.sarif", "junit.xml"]  # no temporary left
    assert main([*args, "--fail-on-policy"]) == 3
    junit_schema.validate(str(junit))


def test_run_writes_valid_exports(planted_folder, concept_yaml, tmp_path, junit_schema, sarif_validator):
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [{"probeset": "planted", "metric": "selective_neurons", "max": 0}]}))
    assert main(["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--out", str(tmp_path / "o"),
                 "--policy", str(policy), "--junit", str(tmp_path / "j.xml"), "--sarif", str(tmp_path / "s.sarif"),
                 "--no-ablation", "--no-explain", "--no-pdf", *FAST]) == 0
    junit_schema.validate(str(tmp_path / "j.xml"))
    assert_valid_sarif(sarif_validator, json.loads((tmp_path / "s.sarif").read_text()))
    assert ET.parse(tmp_path / "j.xml").getroot().find("testcase/failure") is not None


def test_compare_writes_valid_exports(folders, inputs, tmp_path, junit_schema, sarif_validator):  # noqa: F811
    paths, _ = folders
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [{"probeset": "planted", "metric": "new_selective_neurons", "max": 0},
                                                 {"probeset": "planted", "metric": "flagged_overlap", "min": 0.0}]}))
    code, result = _compare(paths["lost"], paths["a"], inputs, tmp_path / "out", "--policy", str(policy),
                            "--junit", str(tmp_path / "j.xml"), "--sarif", str(tmp_path / "s.sarif"))
    assert code == 0
    junit_schema.validate(str(tmp_path / "j.xml"))
    log = json.loads((tmp_path / "s.sarif").read_text())
    assert_valid_sarif(sarif_validator, log)
    assert [r["level"] for r in log["runs"][0]["results"]] == ["error", "none"]
    assert log["runs"][0]["artifacts"][0]["location"]["uri"] == "out/comparison.json"


@pytest.mark.parametrize("case, expected", [
    ("missing-folder", "--junit: {tmp}/nowhere/j.xml: the folder {tmp}/nowhere does not exist"),
    ("folder", "--junit: {tmp} is a folder"),
    ("inside-out", "--junit: {tmp}/out/j.xml is inside --out"),
    ("same-file", "--sarif: {tmp}/x is also the --junit file"),
    ("no-policy", "--junit: there are no policy checks to export; give --policy FILE"),
])
def test_bad_export_path_is_one_line_exit_2_before_any_work(planted_folder, concept_yaml, tmp_path, capsys, case,
                                                            expected):
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [{"probeset": "planted", "metric": "selective_neurons", "max": 0}]}))
    options = {"missing-folder": ["--junit", f"{tmp_path}/nowhere/j.xml"], "folder": ["--junit", str(tmp_path)],
               "inside-out": ["--junit", f"{tmp_path}/out/j.xml"],
               "same-file": ["--junit", f"{tmp_path}/x", "--sarif", f"{tmp_path}/x"],
               "no-policy": ["--junit", f"{tmp_path}/j.xml"]}[case]
    policy_args = ["--policy", "none"] if case == "no-policy" else ["--policy", str(policy)]
    code = main(["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--out",
                 str(tmp_path / "out"), *policy_args, *options, "--no-pdf", *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected.format(tmp=tmp_path) in err, err
    assert not (tmp_path / "out").exists()


def test_bad_export_path_on_render_and_compare(audit_dir, tmp_path, capsys):
    assert main(["render", str(audit_dir / "results.json"), "--out", str(tmp_path / "r"), "--sarif",
                 str(tmp_path / "no" / "s.sarif")]) == 2
    assert "--sarif:" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert main(["compare", "--model-a", "default", "--model-b", "default", "--junit", str(tmp_path),
                 "--out", str(tmp_path / "c")]) == 2
    assert "--junit:" in capsys.readouterr().err


@pytest.mark.skipif(not (os.environ.get("NEURON_AUDIT_JUNIT") or os.environ.get("NEURON_AUDIT_SARIF")),
                    reason="set NEURON_AUDIT_JUNIT / NEURON_AUDIT_SARIF to the exports of a real audit")
def test_exports_of_a_real_audit_validate(junit_schema, sarif_validator):
    """The files a real run wrote (e.g. `make audit` with --junit/--sarif), validated against the bundled schemas."""
    if os.environ.get("NEURON_AUDIT_JUNIT"):
        junit_schema.validate(os.environ["NEURON_AUDIT_JUNIT"])
        assert int(ET.parse(os.environ["NEURON_AUDIT_JUNIT"]).getroot().get("tests")) > 0
    if os.environ.get("NEURON_AUDIT_SARIF"):
        log = json.loads(Path(os.environ["NEURON_AUDIT_SARIF"]).read_text(encoding="utf-8"))
        assert_valid_sarif(sarif_validator, log)
        assert log["runs"][0]["results"]
