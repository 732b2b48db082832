"""Regression against a baseline: the pure diff on recorded results (itself: no change; a modified copy: exactly
the planted changes), the report section, the JSON block's schema, --fail-on-new and the refusals."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import pytest
import yaml

from audit.cli import main
from audit.errors import AuditInputError
from audit.results.baseline import Z95, diff_baseline, difference_ci, newly_failing
from audit.results.schema import validate_results
from tests.results.conftest import FAST


@pytest.fixture(scope="module")
def results(audit_dir) -> dict:
    return json.loads((audit_dir / "results.json").read_text())


def _diff(old: dict, new: dict) -> dict:
    return diff_baseline(old, new, path="old/results.json", sha256="0" * 64)


def _section(result: dict, name: str) -> dict:
    return next(s for s in result["probesets"] if s["name"] == name)


def test_against_itself_nothing_changed(results):
    block = _diff(results, results)
    validate_results({**results, "baseline": block}, where="results.json")
    assert [(p["name"], p["status"]) for p in block["compared_probesets"]] == [("planted", "same"), ("gender", "same")]
    assert block["checks"]["newly_failing"] == block["checks"]["newly_passing"] == []
    assert {r["change"] for r in block["checks"]["rows"]} == {"unchanged"} and len(block["checks"]["rows"]) == 2
    assert block["outputs"] and all(o["difference"] == 0 and o["excludes_zero"] is False for o in block["outputs"])
    assert block["neurons"]["same_weights"] and block["neurons"]["matched_by"] == "neuron id"
    for row in block["neurons"]["per_probeset"]:
        assert row["difference"] == 0 and row["appeared"] == [] and row["vanished"] == []
    assert newly_failing({**results, "baseline": block}) == []


def _planted(results: dict) -> tuple[dict, dict]:
    """A baseline that differs from ``results`` in known ways, and the changes it should report."""
    old = copy.deepcopy(results)
    checks = old["policy"]["checks"]
    checks[0].update(value=10 ** 6, passed=False, verdict="FAIL", outcome="FAIL")  # was failing: now passes
    new = copy.deepcopy(results)
    new["policy"]["checks"][1].update(value=99.0, passed=False, verdict="FAIL", outcome="FAIL")  # newly fails
    _section(old, "gender")["sha256"] = "f" * 64  # same name, other content
    old["probesets"].append({**copy.deepcopy(_section(old, "planted")), "name": "retired"})  # only in the baseline
    concept = _section(old, "planted")
    concept["summary"]["n_significant"] += 5
    vanished = "L1.N999"
    concept["neurons"][-1] = {**concept["neurons"][-1], "name": vanished}
    pair = _section(old, "gender")["disparity"]["output"]["table"]["pairs"][0]
    low, high = pair["ci95"]
    shift = 10 * (high - low)  # far beyond both intervals
    pair.update(difference=pair["difference"] - shift, ci95=[low - shift, high - shift])
    planted = {"newly_failing": [new["policy"]["checks"][1]["name"]],
               "newly_passing": [results["policy"]["checks"][0]["name"]],
               "appeared": [results["probesets"][0]["neurons"][-1]["name"]], "vanished": [vanished],
               "shift": shift, "width": high - low}
    return old, new | {"_planted": planted}


def test_against_a_modified_copy_exactly_the_planted_changes(results):
    old, new = _planted(results)
    planted = new.pop("_planted")
    block = _diff(old, new)
    validate_results({**new, "baseline": block}, where="results.json")
    assert [(p["name"], p["status"]) for p in block["compared_probesets"]] == [
        ("planted", "same"), ("gender", "changed"), ("retired", "only in the baseline")]
    assert block["checks"]["newly_failing"] == planted["newly_failing"]
    assert block["checks"]["newly_passing"] == planted["newly_passing"]
    moved = [o for o in block["outputs"] if o["excludes_zero"]]
    assert [o["score"] for o in moved] == ["table.difference[female|male]"]
    assert moved[0]["difference"] == pytest.approx(planted["shift"])
    half = Z95 * math.sqrt(2) * planted["width"] / (2 * Z95)  # two equal widths: √2 × one standard error
    assert moved[0]["ci"] == pytest.approx([planted["shift"] - half, planted["shift"] + half])
    assert all(o["difference"] == 0 for o in block["outputs"] if o is not moved[0])
    rows = {r["probeset"]: r for r in block["neurons"]["per_probeset"]}
    assert set(rows) == {"planted", "gender"}
    assert rows["planted"]["difference"] == -5 and rows["gender"]["difference"] == 0
    assert rows["planted"]["appeared"] == planted["appeared"] and rows["planted"]["vanished"] == planted["vanished"]
    assert rows["gender"]["appeared"] == rows["gender"]["vanished"] == []


def test_different_weights_compare_counts_only_and_name_the_compare_tool(results):
    other = copy.deepcopy(results)
    other["model"]["weights_sha256"] = "e" * 64
    block = _diff(other, results)
    assert not block["neurons"]["same_weights"] and block["neurons"]["matched_by"] is None
    assert "neuron-audit compare" in block["neurons"]["note"]
    assert all("appeared" not in r and "vanished" not in r for r in block["neurons"]["per_probeset"])
    validate_results({**results, "baseline": block}, where="results.json")


def test_no_shared_probe_set_is_refused(results):
    other = copy.deepcopy(results)
    for section in other["probesets"]:
        section["name"] = "x-" + section["name"]
    with pytest.raises(AuditInputError, match=r"old/results.json: shares no probe set with this run \(baseline: "
                                              r"x-planted, x-gender; this run: planted, gender\)"):
        _diff(other, results)


def test_difference_ci_is_the_combined_standard_error_by_hand():
    old, new = {"value": 1.0, "ci": [0.0, 2.0]}, {"value": 2.0, "ci": [1.5, 2.5]}
    se = math.sqrt((2.0 / 3.919927969080108) ** 2 + (1.0 / 3.919927969080108) ** 2)
    assert difference_ci(old, new) == pytest.approx([1.0 - 1.959963984540054 * se, 1.0 + 1.959963984540054 * se])
    assert difference_ci({"value": 1.0, "ci": None}, new) is None


@pytest.mark.parametrize("before, after, change", [
    ("PASS", "FAIL", "newly failing"), ("NOT EVALUATED", "FAIL", "newly failing"), ("FAIL", "PASS", "newly passing"),
    ("FAIL", "NOT EVALUATED", "FAIL → NOT EVALUATED"), ("FAIL", "FAIL", "unchanged"), (None, "FAIL", "not in the baseline")])
def test_extended_check_records_with_not_evaluated(results, before, after, change):
    def record(outcome):
        return {"name": "c", "probeset": "gender", "metric": "output_disparity", "value": None if outcome ==
                "NOT EVALUATED" else 0.1, "ci": None, "unit": "nats", "threshold": "≤ 0.05", "outcome": outcome,
                "reason": "no scores" if outcome == "NOT EVALUATED" else None, "bound": "max", "limit": 0.05,
                "passed": outcome == "PASS", "verdict": outcome}

    old, new = copy.deepcopy(results), copy.deepcopy(results)
    old["policy"]["checks"] = [] if before is None else [record(before)]
    new["policy"]["checks"] = [record(after)]
    block = _diff(old, new)
    (row,) = block["checks"]["rows"]
    assert row["change"] == change
    assert block["checks"]["newly_failing"] == (["c"] if change == "newly failing" else [])


def test_a_baseline_without_policy_says_so(results):
    old = {k: v for k, v in results.items() if k != "policy"}
    block = _diff(old, results)
    assert block["checks"]["newly_failing"] == [] and "no policy checks" in block["checks"]["notes"][0]
    assert {r["change"] for r in block["checks"]["rows"]} == {"not in the baseline"}


# --- the command line ---------------------------------------------------------------------------------------

def _write(path: Path, result: dict) -> Path:
    path.write_text(json.dumps(result))
    return path


def test_render_against_itself_reports_no_change(audit_dir, tmp_path, capsys):
    results = audit_dir / "results.json"
    assert main(["render", str(results), "--out", str(tmp_path / "out"), "--no-pdf", "--baseline", str(results),
                 "--fail-on-new"]) == 0
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    validate_results(written, where="results.json")
    assert written["baseline"]["path"] == str(results) and written["baseline"]["checks"]["newly_failing"] == []
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Since the baseline" in html and "no policy check newly fails" in html
    assert "none changed beyond the 95 % CI of the difference" in html and "an earlier audit of the same weights" in html
    section = html[html.index('<section id="baseline">'):html.index("</section>", html.index('<section id="baseline">'))]
    text = re.sub(r"<[^>]+>", "", section)
    assert not re.search(r"[a-z)][.:][A-Z]", text), "sentences run together"
    assert "0 check(s) newly fail, 0 newly pass; compared planted, gender" in capsys.readouterr().out


def test_render_against_a_modified_copy_and_fail_on_new(audit_dir, results, tmp_path, capsys):
    old, new = _planted(results)
    planted = new.pop("_planted")
    baseline, current = _write(tmp_path / "old.json", old), _write(tmp_path / "new.json", new)
    args = ["render", str(current), "--out", str(tmp_path / "out"), "--no-pdf", "--baseline", str(baseline)]
    assert main(args) == 0  # without --fail-on-new a new failure is reported, exit code as today
    assert main([*args, "--fail-on-new"]) == 3
    out = capsys.readouterr().out
    assert f"newly failing: {planted['newly_failing'][0]}" in out and "(changed content: gender)" in out
    html = (tmp_path / "out" / "report.html").read_text()
    assert "1 policy check newly fails" in html and "1 check newly passes" in html and "changed" in html
    assert planted["vanished"][0] in html
    # a failure that was already there is not new: --fail-on-new exits 0, --fail-on-policy still 3
    _write(baseline, copy.deepcopy(new))
    assert main([*args, "--fail-on-new"]) == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [{"probeset": "gender", "metric": "output_disparity", "max": 0}]}))
    assert main([*args, "--fail-on-policy", "--policy", str(policy)]) == 3
    # re-evaluating the policy without --baseline leaves the stale comparison out, with a warning
    capsys.readouterr()
    assert main(["render", str(tmp_path / "out" / "results.json"), "--out", str(tmp_path / "again"), "--no-pdf",
                 "--policy", str(policy)]) == 0
    assert "former policy" in capsys.readouterr().err
    assert "baseline" not in json.loads((tmp_path / "again" / "results.json").read_text())


@pytest.mark.parametrize("case, expected", [
    ("no-shared", "--baseline: {tmp}/other.json: shares no probe set with this run"),
    ("missing", "--baseline: {tmp}/absent.json: no such results file"),
    ("invalid", "--baseline: {tmp}/broken.json: probesets[0]"),
    ("fail-on-new-alone", "--fail-on-new: needs --baseline"),
])
def test_bad_baseline_is_one_line_exit_2_before_the_audit(planted_folder, concept_yaml, results, tmp_path, capsys,
                                                          case, expected):
    other = copy.deepcopy(results)
    for section in other["probesets"]:
        section["name"] = "x-" + section["name"]
    _write(tmp_path / "other.json", other)
    broken = copy.deepcopy(results)
    del broken["probesets"][0]["sha256"]
    _write(tmp_path / "broken.json", broken)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [{"probeset": "planted", "metric": "selective_neurons", "max": 0}]}))
    extra = {"no-shared": ["--baseline", f"{tmp_path}/other.json"], "missing": ["--baseline", f"{tmp_path}/absent.json"],
             "invalid": ["--baseline", f"{tmp_path}/broken.json"], "fail-on-new-alone": ["--fail-on-new"]}[case]
    code = main(["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--out", str(tmp_path / "out"),
                 "--policy", str(policy), *extra, "--no-pdf", *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and expected.format(tmp=tmp_path) in err, err
    assert not (tmp_path / "out").exists()


def test_run_with_a_baseline_and_fail_on_new(planted_folder, concept_yaml, results, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"checks": [{"probeset": "planted", "metric": "selective_neurons", "max": 0}]}))
    old = copy.deepcopy(results)  # the same check passed in the baseline
    old["policy"]["checks"] = [{"name": "planted: selective_neurons max 0", "probeset": "planted",
                                "metric": "selective_neurons", "bound": "max", "limit": 0, "value": 0.0,
                                "passed": True, "verdict": "PASS"}]
    baseline = _write(tmp_path / "old.json", old)
    args = ["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--policy", str(policy),
            "--baseline", str(baseline), "--no-ablation", "--no-explain", "--no-pdf", *FAST]
    assert main([*args, "--out", str(tmp_path / "a"), "--fail-on-new"]) == 3
    written = json.loads((tmp_path / "a" / "results.json").read_text())
    validate_results(written, where="results.json")
    block = written["baseline"]
    assert block["checks"]["newly_failing"] == ["planted: selective_neurons max 0"]
    assert [(p["name"], p["status"]) for p in block["compared_probesets"]] == [("planted", "same"),
                                                                               ("gender", "only in the baseline")]
    assert block["neurons"]["same_weights"] and [r["probeset"] for r in block["neurons"]["per_probeset"]] == ["planted"]
    assert "Since the baseline" in (tmp_path / "a" / "report.html").read_text()
    _write(baseline, written)  # against its own output: nothing new fails
    assert main([*args, "--out", str(tmp_path / "b"), "--fail-on-new"]) == 0


def test_section_with_different_weights_points_to_compare(results):
    from audit.results.report import render_html

    other = copy.deepcopy(results)
    other["model"]["weights_sha256"] = "e" * 64
    html = render_html({**results, "baseline": _diff(other, results)})
    assert "of <strong>different weights</strong>" in html and "neuron-audit compare matches neurons" in html
    assert "Reported top neurons that appeared" not in html
    assert "Since the baseline" not in render_html(results)
