"""Reports: sections in HTML and PDF, re-rendering from results.json, policy checks and exit codes."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from audit.cli import main
from audit.errors import AuditInputError
from audit.results.policy import evaluate, load_policy

SECTIONS = ["Verdict", "What we found", "Scope and limits", "Glossary", "Model provenance", "Run metadata", "Methods",
            "Probe set: planted", "Probe set: gender", "Ablation validation", "Output-level disparity",
            "Neuron cards", "Limitations", "Caveats for this run", "Reproduce and sign", "Sign-off"]
def test_html_has_every_section_and_is_self_contained(audit_dir):
    html = (audit_dir / "report.html").read_text()
    for title in SECTIONS:
        assert title in html, title
    assert "<svg" in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in html and "https://" not in html and "<link" not in html
    assert "PASS" in html and "looks monosemantic" in html


def test_pdf_holds_the_sections(audit_dir):
    from pypdf import PdfReader

    reader = PdfReader(audit_dir / "report.pdf")
    text = " ".join(page.extract_text() for page in reader.pages)
    assert len(reader.pages) >= 5
    for title in SECTIONS:
        assert title in text, title
    assert "Page 1 of" in text and "neuron-audit" in text


def test_render_reproduces_the_html_without_the_model(audit_dir, tmp_path):
    out = tmp_path / "again"
    assert main(["render", str(audit_dir / "results.json"), "--out", str(out), "--no-pdf"]) == 0
    assert (out / "report.html").read_text() == (audit_dir / "report.html").read_text()
    assert json.loads((out / "results.json").read_text()) == json.loads((audit_dir / "results.json").read_text())


def test_policy_verdicts_and_exit_codes(audit_dir, tmp_path, capsys):
    results = json.loads((audit_dir / "results.json").read_text())
    assert results["policy"]["passed"] and [c["verdict"] for c in results["policy"]["checks"]] == ["PASS", "PASS"]
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump({"checks": [{"probeset": "planted", "metric": "selective_neurons", "max": 0,
                                                  "name": "no selective neurons"}]}))
    args = ["render", str(audit_dir / "results.json"), "--out", str(tmp_path / "o"), "--no-pdf",
            "--policy", str(strict)]
    assert main(args) == 0  # a failed check is reported ...
    assert "policy FAIL: no selective neurons" in capsys.readouterr().out
    assert main([*args, "--fail-on-policy"]) == 3  # ... and gates CI when asked
    html = (tmp_path / "o" / "report.html").read_text()
    assert "FAIL" in html and "no selective neurons" in html

    def value(metric: str) -> float:
        policy = {"file": "p.yaml", "sha256": "", "checks": [{"probeset": "planted", "metric": metric, "max": 0}]}
        return evaluate(policy, results)["checks"][0]["value"]

    validated = results["probesets"][0]["ablation"]["validated"]  # corrected p < 0.05, expected direction
    assert value("validated_selective_neurons") == (value("selective_neurons") if validated else 0.0)
    flipped = json.loads(json.dumps(results))
    flipped["probesets"][0]["ablation"]["validated"] = not validated
    policy = {"file": "p.yaml", "sha256": "",
              "checks": [{"probeset": "planted", "metric": "validated_selective_neurons", "max": 0}]}
    assert evaluate(policy, flipped)["checks"][0]["value"] == (0.0 if validated else value("selective_neurons"))


def test_ablation_block_shows_verdict_nulls_and_dose_response(audit_dir, tmp_path):
    results = json.loads((audit_dir / "results.json").read_text())
    html = (audit_dir / "report.html").read_text()
    for section in results["probesets"]:
        a = section["ablation"]
        if "skipped" in a:
            continue
        assert a["correction"].startswith("graphical") and a["verdict"] in html and a["selection"] in html
        assert a["n_tests"] == sum(len(s["ablation"].get("dose_response", [])) for s in results["probesets"])
    assert "causally validated" not in html
    assert "Dose–response" in html and "neurons ablated, k" in html and "Corrected p" in html
    assert "95 % CI" in html and "activation-matched" in html
    old = json.loads(json.dumps(results))  # a results.json written before the dose–response existed
    for section in old["probesets"]:
        for key in ("dose_response", "verdict", "validated", "p_corrected", "null_matched", "p_value_matched",
                    "n_null_sets", "max_null_sets", "correction", "n_tests", "correction_family", "selection",
                    "smallest_validated_k", "n_significant"):
            section["ablation"].pop(key, None)
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert main(["render", str(tmp_path / "old.json"), "--out", str(tmp_path / "old"), "--no-pdf"]) == 0
    rendered = (tmp_path / "old" / "report.html").read_text()
    assert "not called validated" in rendered and "Dose–response" not in rendered


def test_dose_response_plot_has_axes_band_and_points():
    from audit.results.plots import dose_response

    rows = [{"k": 1, "effect": 0.1, "null_mean": 0.01, "null_p95": 0.03, "validated": True},
            {"k": 10, "effect": 0.5, "null_mean": 0.02, "null_p95": 0.05, "validated": True},
            {"k": "aura", "effect": 0.3, "null_mean": 0.1, "null_p95": 0.2, "validated": False}]
    svg = dose_response(rows, "t", y_title="nats")
    assert svg.startswith("<svg") and "neurons ablated, k" in svg and ">nats<" in svg
    assert ">1<" in svg and ">10<" in svg and ">AurA<" in svg  # x ticks
    assert ">0.5<" in svg and ">0<" in svg  # y ticks: the top and zero
    assert svg.count("<circle") == 4 and "<polygon" in svg and "<polyline" in svg  # 3 points + legend, band, line
    assert dose_response([], "t", y_title="x") == ""


@pytest.mark.parametrize("document, message", [
    ({"rules": []}, "checks: expected a mapping with a key 'checks'"),
    ({"checks": [{"probeset": "planted", "metric": "magic", "max": 1}]}, "checks[0].metric: must be one of"),
    ({"checks": [{"probeset": "planted", "metric": "selective_neurons"}]},
     "checks[0]: needs exactly one numeric bound"),
    ({"checks": [{"probeset": "planted", "metric": "selective_neurons", "max": 1, "colour": 2}]}, "checks[0].colour"),
])
def test_bad_policy_files_are_input_errors(tmp_path, document, message):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(AuditInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_policy(path)


def test_policy_naming_an_unaudited_set_exits_2(audit_dir, tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"checks": [{"probeset": "absent", "metric": "output_disparity", "max": 1}]}))
    assert main(["render", str(audit_dir / "results.json"), "--out", str(tmp_path / "o"), "--policy", str(path)]) == 2
    assert "checks[0].probeset: 'absent' was not audited" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_render_rejects_a_file_that_is_not_results(tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text('{"model": {}}')
    assert main(["render", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "schema_version: missing" in capsys.readouterr().err


def test_missing_cjk_fonts_are_flagged_visibly(audit_dir, monkeypatch):
    from audit.results import report

    results = json.loads((audit_dir / "results.json").read_text())
    results["probesets"][0]["description"] = "中文 probe texts"
    monkeypatch.setattr(report, "_has_cjk_font", lambda: False)
    assert "no CJK font is installed" in report.render_html(results)
    monkeypatch.setattr(report, "_has_cjk_font", lambda: True)
    assert "no CJK font is installed" not in report.render_html(results)


def test_policy_is_checked_before_the_model_loads(concept_yaml, tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"checks": [{"probeset": "absent", "metric": "selective_neurons", "max": 1}]}))
    code = main(["run", "--model", "/nonexistent/model", "--probeset", str(concept_yaml), "--policy", str(path),
                 "--out", str(tmp_path / "o")])
    assert code == 2 and "'absent' is not among the probe sets to audit" in capsys.readouterr().err


def test_rendering_without_pdf_removes_a_stale_pdf(audit_dir, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(audit_dir, out)
    assert main(["render", str(out / "results.json"), "--out", str(out), "--no-pdf"]) == 0
    assert not (out / "report.pdf").exists() and (out / "report.html").exists()


def test_paired_report_shows_preference_and_per_marker_breakdown(audit_dir):
    html = (audit_dir / "report.html").read_text()
    results = json.loads((audit_dir / "results.json").read_text())
    disparity = next(s for s in results["probesets"] if s["name"] == "gender")["disparity"]
    assert "Which version the model prefers" in html and "Per marker kind" in html
    assert "ties count 0 (lm-evaluation-harness)" in html  # the causal LM's sentence-scoring convention is named
    assert "Sentence scores: lm-evaluation-harness: every token of each sentence scored after the model&#39;s " \
           "prefix token" in html
    assert set(disparity["by_marker"]) == {"noun", "pronoun"}
    assert " <span class=\"muted\">(q alone would flag" in html


def test_sets_without_reported_neurons_get_a_sentence_not_an_empty_table(audit_dir):
    from audit.results.report import render_html

    results = json.loads((audit_dir / "results.json").read_text())
    for section in results["probesets"]:
        if section["kind"] == "concept":
            section["neurons"] = []
            section["summary"]["n_significant"] = 0
        else:
            section["disparity"]["neurons"] = []
            counts = section["disparity"]["counts"]["q_and_effect"]
            counts["any_group"] = 1
    html = render_html(results)
    assert "No neuron reaches q" in html and "Largest item difference" not in html
    assert "Neuron cards" not in html
    assert re.search(r"1 neuron is group-selective", html)


def test_preference_bias_policy_is_the_distance_from_no_preference(audit_dir):
    results = json.loads((audit_dir / "results.json").read_text())
    share = next(s for s in results["probesets"] if s["name"] == "gender")["disparity"]["output"]["preference"][
        "rows"][0]["share"]
    policy = {"file": "p.yaml", "sha256": "0", "checks": [{"probeset": "gender", "metric": "preference_bias",
                                                          "max": abs(share - 0.5) + 1e-9}]}
    (check,) = evaluate(policy, results)["checks"]
    assert check["value"] == pytest.approx(abs(share - 0.5)) and check["passed"] and check["outcome"] == "PASS"
    del next(s for s in results["probesets"] if s["name"] == "gender")["disparity"]["output"]["preference"]
    (check,) = evaluate(policy, results)["checks"]  # a measure these results cannot give: not evaluated, with why
    assert check["outcome"] == check["verdict"] == "NOT EVALUATED" and check["passed"] is None
    assert check["value"] is None and "needs a model that scores sentences" in check["reason"]


def test_neuron_cards_show_the_four_scores_compactly_with_a_reading(audit_dir):
    from audit.results.report import render_html

    results = json.loads((audit_dir / "results.json").read_text())
    explained = [n for s in results["probesets"] for n in s.get("neurons", []) if "scores" in n.get("explanation", {})]
    assert explained, "the test audit explains its reported neurons"
    scores = explained[0]["explanation"]["scores"]
    scores["simulation"].update(value=None, ci=None, reason="no variation in the held-out activations")
    scores["detection"].update(value=0.8, ci=[0.7, 0.9])
    scores["detection"]["baselines"]["token_lookup"]["value"] = 0.5
    scores["fuzzing"].update(value=0.6, ci=[0.5, 0.7])
    scores["fuzzing"]["baselines"]["token_lookup"]["value"] = 0.65
    scores["detection"]["versus_token_lookup"], scores["fuzzing"]["versus_token_lookup"] = "better", "same"
    html = render_html(results)
    card = html[html.index(f'id="card-{explained[0]["name"]}"'):]
    card = card[:card.index("Causal check") if "Causal check" in card else 20000]
    assert "This explanation [95% CI]" in card and "Random other neuron" in card
    assert "in 8 of 10 balanced cases" in card and "better on detection" in card
    assert "no better on fuzzing" in card
    assert "undefined: simulation (no variation in the held-out activations)" in card


def test_an_encoders_results_render_again(tmp_path, tokenizer):
    """`render` reads back what `run` wrote for an encoder: its output tables hold cosines, not differences
    with an excludes-zero flag (the semantic check once demanded one, and every encoder audit failed to
    re-render)."""
    import yaml

    from audit.cli import main
    from tests import tiny
    from tests.stages.test_paired import gender_items

    folder = tiny.save(tiny.build_bert(tokenizer), tokenizer, tmp_path / "bert")
    gender = {"name": "gender", "description": "d", "kind": "paired", "groups": ["female", "male"],
              "items": gender_items(12, seed=3)}
    (tmp_path / "gender.yaml").write_text(yaml.safe_dump(gender))
    out = tmp_path / "out"
    assert main(["run", "--model", str(folder), "--probeset", str(tmp_path / "gender.yaml"), "--out", str(out),
                 "--no-progress", "--no-ablation", "--no-explain", "--no-pdf", "--policy", "none"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert "cosine" in results["probesets"][0]["disparity"]["output"]["table"]["pairs"][0]
    assert main(["render", str(out / "results.json"), "--out", str(tmp_path / "again"), "--no-pdf"]) == 0
    assert (tmp_path / "again" / "report.html").exists()


def test_the_pdf_keeps_the_first_cards_and_points_to_the_rest(audit_dir, monkeypatch):
    from audit.results import report

    results = json.loads((audit_dir / "results.json").read_text())
    section = next(s for s in results["probesets"] if s["kind"] == "concept")
    names = [n["name"] for n in section["neurons"][:report.CARDS_PER_SET]]
    assert len(names) >= 2
    monkeypatch.setattr(report, "PRINT_CARDS_PER_SET", 1)
    html = report.render_html(results)
    assert f'<div class="screen-only"><div class="card" id="card-{names[1]}">' in html  # in the HTML, not the PDF
    assert f'<div class="card" id="card-{names[0]}">' in html.replace('<div class="screen-only">', "")
    note = html[html.index('<p class="print-only muted">'):]
    assert note.startswith(f'<p class="print-only muted">{len(names) - 1} more {section["name"]} card')
    assert f"<code>{names[1]}</code>" in note[:500] and "report.html" in note[:800]
