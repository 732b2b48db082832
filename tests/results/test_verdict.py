"""Verdict first: the shipped default policy, PASS / FAIL / NOT EVALUATED with value, CI and unit, and the report's
page 1, scope, glossary, reproduce box, report id and sign-off; the PDF read as a reader sees it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from audit.cli import main
from audit.provenance import sha256_file, sha256_json
from audit.results.policy import DEFAULT_POLICY, METRICS, default_policy, evaluate, load_policy
from tests.results.pdftext import page_texts, problems

ROOT = Path(__file__).resolve().parents[2]


def _gender_section(excess: float, ci: list[float]) -> dict:
    return {"name": "gender-occupations", "kind": "paired", "alpha": 0.05,
            "disparity": {"counts": {"q_and_effect": {"any_group": 3, "per_group": {"female": 2, "male": 2}}},
                          "output": {"metric": "cosine", "table": {"pairs": [{"group": "female", "versus": "male",
                                                                              "cosine": 0.8, "ci95": [0.7, 0.9]}]},
                                     "sensitivity": {"rows": [{"group": "female", "versus": "male", "excess": excess,
                                                               "excess_ci95": ci}]}}}}


def _concept_section(name: str, control: int) -> dict:
    return {"name": name, "kind": "concept", "alpha": 0.05, "control": {"n_significant": control},
            "summary": {"n_neurons_tested": 1000, "strong_selective": {"0.8": 4}}}


def _result(kind: str, *sections: dict) -> dict:
    return {"model": {"kind": kind}, "probesets": list(sections)}


def test_default_policy_ships_with_the_package_and_documents_every_threshold():
    assert DEFAULT_POLICY.is_relative_to(ROOT / "audit" / "data")  # inside the package, not beside it
    assert "\"data/policies/*.yaml\"" in (ROOT / "pyproject.toml").read_text()  # ... and in its package data
    document = yaml.safe_load(DEFAULT_POLICY.read_text())
    assert document["skip_unaudited"] is True
    for check in document["checks"]:
        assert check["metric"] in METRICS and len(check["rationale"]) > 30 and check.get("source"), check
    policy = default_policy()
    assert policy["default"] and policy["sha256"] == sha256_file(DEFAULT_POLICY)
    assert policy["path"] == str(DEFAULT_POLICY.resolve())


def test_thresholds_can_fail_and_pass_with_value_ci_unit_and_threshold():
    result = _result("encoder", _gender_section(0.14, [0.12, 0.16]), _concept_section("toxicity", 0))
    evaluated = evaluate(default_policy(), result)
    by_metric = {c["metric"]: c for c in evaluated["checks"]}
    gender, control = by_metric["output_disparity"], by_metric["control_selective_share"]
    assert gender["outcome"] == gender["verdict"] == "FAIL" and gender["passed"] is False
    assert gender["value"] == pytest.approx(0.14) and gender["ci"] == [0.12, 0.16] and gender["threshold"] == "≤ 0.05"
    assert "cosine" in gender["unit"] and gender["rationale"] and gender["source"]
    assert control["outcome"] == "PASS" and control["value"] == 0.0 and control["ci"] is None
    assert control["name"].endswith("(toxicity)")  # a pattern check names the set it was applied to
    assert not evaluated["passed"] and evaluated["counts"]["FAIL"] == 1
    # the same gender measure inside the threshold passes
    fine = evaluate(default_policy(), _result("encoder", _gender_section(0.01, [0.0, 0.02])))
    assert {c["metric"]: c["outcome"] for c in fine["checks"]}["output_disparity"] == "PASS"


def test_checks_the_results_cannot_measure_are_not_evaluated_with_the_reason():
    evaluated = evaluate(default_policy(), _result("encoder", _gender_section(0.01, [0.0, 0.02])))
    preference = next(c for c in evaluated["checks"] if c["metric"] == "preference_bias")
    assert preference["outcome"] == "NOT EVALUATED" and preference["passed"] is None and preference["value"] is None
    assert "scores sentences" in preference["reason"]
    causal = evaluate(default_policy(), _result("causal-lm", _gender_section(0.5, [0.4, 0.6])))
    encoder_only = next(c for c in causal["checks"] if c["metric"] == "output_disparity")
    assert encoder_only["outcome"] == "NOT EVALUATED" and "defined for encoder models" in encoder_only["reason"]
    assert causal["passed"]  # nothing FAILs: NOT EVALUATED is not a pass, and it does not fail the policy either
    skipped = {x["probeset"] for x in causal["not_applicable"]}
    assert {"crows-pairs*", "winobias*", "stereoset*", "multilingual"} <= skipped


def test_distance_from_no_preference_carries_its_interval():
    section = {"name": "crows-pairs", "kind": "paired", "disparity": {"output": {"table": {}, "preference": {
        "rows": [{"share": 0.62, "ci95": [0.58, 0.66]}]}}}}
    (check,) = [c for c in evaluate(default_policy(), _result("causal-lm", section))["checks"]]
    assert check["value"] == pytest.approx(0.12) and check["ci"] == pytest.approx([0.08, 0.16])
    assert check["outcome"] == "FAIL"
    section["disparity"]["output"]["preference"]["rows"][0].update(share=0.52, ci95=[0.45, 0.58])
    (check,) = evaluate(default_policy(), _result("causal-lm", section))["checks"]
    assert check["ci"] == pytest.approx([0.0, 0.08]) and check["outcome"] == "PASS"  # the CI spans 0.5


def test_policy_files_take_names_patterns_and_model_kinds(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "checks": [
        {"probeset": "tox*", "metric": "control_selective_share", "max": 0, "rationale": "r", "source": "s"},
        {"probeset": "toxicity", "metric": "selective_neurons", "max": 3, "model_kind": "causal-lm"}]}))
    policy = load_policy(path)
    evaluated = evaluate(policy, _result("encoder", _concept_section("toxicity", 2)))
    first, second = evaluated["checks"]
    assert first["outcome"] == "FAIL" and first["value"] == pytest.approx(0.002) and evaluated["name"] == "mine"
    assert second["outcome"] == "NOT EVALUATED"
    path.write_text(yaml.safe_dump({"checks": [{"probeset": "x", "metric": "selective_neurons", "max": 1,
                                                "model_kind": "rnn"}]}))
    with pytest.raises(Exception, match=r"checks\[0\].model_kind: must be one of encoder, causal-lm"):
        load_policy(path)


def test_render_applies_the_default_policy_unless_told_none(audit_dir, tmp_path, capsys):
    results = json.loads((audit_dir / "results.json").read_text())
    del results["policy"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(results))
    assert main(["render", str(bare), "--out", str(tmp_path / "d"), "--no-pdf"]) == 0
    applied = json.loads((tmp_path / "d" / "results.json").read_text())["policy"]
    assert applied["default"] and applied["sha256"] == sha256_file(DEFAULT_POLICY)
    assert [c["probeset"] for c in applied["checks"]] == ["planted"]  # the pattern check on the concept set
    assert main(["render", str(bare), "--out", str(tmp_path / "n"), "--no-pdf", "--policy", "none"]) == 0
    assert "policy" not in json.loads((tmp_path / "n" / "results.json").read_text())
    html = (tmp_path / "n" / "report.html").read_text()
    assert "No policy was applied" in html


def test_page_one_opens_with_the_verdict_then_the_conclusions(audit_dir):
    html = (audit_dir / "report.html").read_text()
    verdict, found = html.index("<h2 class=\"first\">Verdict</h2>"), html.index("What we found</h2>")
    assert verdict < html.index("<table class=\"verdict\">") < found < html.index("Scope and limits</h2>")
    for words in ("What we found.", "How sure we are.", "What it means for using this model.",
                  "What it does not show."):
        assert html.count(words) == 2, words  # one conclusion per probe set
    # the conclusion states the corrected test behind the ablation verdict (old results: see test_report)
    assert "after correction over" in html


def test_validated_comes_only_from_the_corrected_ablation(audit_dir):
    from audit.results.conclusions import ablation_sentence

    section = next(s for s in json.loads((audit_dir / "results.json").read_text())["probesets"]
                   if "p_value" in s.get("ablation", {}))
    section["ablation"].update(validated=True, verdict="validated", p_corrected=0.01, n_tests=4)
    assert ablation_sentence(section).endswith("after correction over 4 tests): validated.")
    section["ablation"].update(p_corrected=None, validated=False,
                               verdict="not tested: the stronger dose before it in the fixed order (k = 30) was "
                                       "not validated")
    assert ablation_sentence(section).endswith(": not tested: the stronger dose before it in the fixed order "
                                               "(k = 30) was not validated.")
    section["ablation"].update(validated=True, verdict="validated", p_corrected=0.01, n_tests=4)
    section["ablation"].update(validated=False, verdict="not distinguishable from random neurons", p_corrected=0.3)
    assert "validated." not in ablation_sentence(section)


def test_scope_glossary_reproduce_box_and_sign_off(audit_dir, tmp_path):
    results = json.loads((audit_dir / "results.json").read_text())
    html = (audit_dir / "report.html").read_text()
    assert "user file" in html and "Attributes no probe set covers" in html
    assert "Sampled generations" in html and "What was not tested" in html  # the fixed list for a causal LM
    for term in ("q-value", "AUROC", "1 − cosine", "LAPE", "Group-selective neuron", "Polysemantic", "Validated",
                 "95 % CI"):
        assert f"<dt>{term}" in html, term
    run = results["run"]
    assert run["command_line"].startswith("neuron-audit run --model ") and run["tool_version"]
    assert run["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", run["git_commit"])
    assert run["inputs"]["reference"]["sha256"] in html and results["model"]["weights_sha256"] in html
    for section in results["probesets"]:
        assert section["file_sha256"] in html
    assert results["policy"]["sha256"] in html
    report_id = sha256_json(results)
    assert f'content: "report id {report_id}"' in html  # every page footer
    assert main(["render", str(audit_dir / "results.json"), "--out", str(tmp_path / "s"), "--no-pdf",
                 "--reviewer", "A. Reviewer", "--organisation", "Org Ltd"]) == 0
    signed = (tmp_path / "s" / "report.html").read_text()
    assert "<td>A. Reviewer</td>" in signed and "<td>Org Ltd</td>" in signed
    assert "<td>A. Reviewer</td>" not in html  # left blank for ink by default


def test_pdf_reads_cleanly(audit_dir):
    texts = page_texts(audit_dir / "report.pdf")
    assert texts[0].lstrip().startswith("Neuron audit of") and "Verdict" in texts[0] and "PASS" in texts[0]
    assert problems(audit_dir / "report.pdf") == []


def test_pdf_checks_catch_what_they_look_for(tmp_path):
    import weasyprint

    html = ("<html><body><p>One sentence.In-context another. ##ps and L0/.N1322</p>"
            "<p style='break-before: page'>Next page, not a section start.</p>"
            "<p style='break-before: page'>Last.</p></body></html>")
    pdf = tmp_path / "bad.pdf"
    pdf.write_bytes(weasyprint.HTML(string=html).write_pdf())
    found = " | ".join(problems(pdf))
    assert "word piece '##ps'" in found and "sentences joined" in found and "split id" in found
    assert "page 1:" in found and "% full" in found


def test_public_benchmarks_carry_their_documented_limitations_beside_their_scores(audit_dir):
    from audit.results.report import render_html

    results = json.loads((audit_dir / "results.json").read_text())
    del results["policy"]
    gender = next(s for s in results["probesets"] if s["kind"] == "paired")
    gender.update(name="crows-pairs", source="Imported from CrowS-Pairs (crows_pairs_anonymized.csv)")
    html = render_html(results)
    section = html[html.index("Probe set: crows-pairs</h2>"):]
    assert section.index("Blodgett") < section.index("Output-level disparity")  # beside its scores
    assert "US-centric" in section and "imported benchmark (CrowS-Pairs)" in html
    assert "Known limitations of the public benchmarks used" in html


def test_language_sets_say_what_their_neuron_counts_mean():
    from audit.results.conclusions import _language_sentences

    unknown = {"separation": {"separates": False, "not_served": ["fr", "zh"]}}
    (sentence,) = _language_sentences(unknown)
    assert sentence.startswith("The model does not know fr, zh:") and "tokenizer's coverage" in sentence
    known = {"separation": {"separates": True, "not_served": []},
             "deactivation": {"summary": ["deactivating fr neurons raises fr perplexity 3.0× as much as the other "
                                          "languages' on average (+30.0% vs +10.0%)"]}}
    assert _language_sentences(known) == ["Deactivation matrix: deactivating fr neurons raises fr perplexity 3.0× "
                                          "as much as the other languages' on average (+30.0% vs +10.0%)."]
    assert _language_sentences(None) == [] and _language_sentences({"separation": {"separates": True}}) == []
