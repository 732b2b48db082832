"""Importers on small fixture files in the CrowS-Pairs and WinoBias formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.cli import main
from audit.errors import AuditInputError
from audit.probes.crows_pairs import import_crows_pairs
from audit.probes.probeset import load_probeset_file
from audit.probes.winobias import import_winobias

FIXTURES = Path(__file__).parent / "fixtures"


def test_crows_pairs_orients_pairs_by_direction_and_tags_bias_type():
    (document,) = import_crows_pairs(FIXTURES / "crows_pairs_sample.csv")
    items = document["items"]
    assert document["groups"] == ["stereotypical", "anti_stereotypical"] and len(items) == 4
    by_marker = {}
    for item in items:
        by_marker.setdefault(item["marker"], []).append(item)
    assert set(by_marker) == {"age", "gender", "socioeconomic"}
    rich = by_marker["socioeconomic"][0]  # antistereo: sent_less holds the stereotype
    assert rich["stereotypical"].startswith("The poor") and rich["anti_stereotypical"].startswith("The rich")
    nurse = by_marker["gender"][1]
    assert nurse["stereotypical"].startswith("She was a nurse")


def test_crows_pairs_split_by_bias_type():
    documents = import_crows_pairs(FIXTURES / "crows_pairs_sample.csv", split=True)
    assert [d["name"] for d in documents] == ["crows-pairs-age", "crows-pairs-gender", "crows-pairs-socioeconomic"]


@pytest.mark.parametrize("name, message", [
    ("crows_pairs_bad_direction.csv", "row 3: stereo_antistereo must be 'stereo' or 'antistereo', got 'sideways'"),
    ("crows_pairs_missing_column.csv", "missing column 'stereo_antistereo'"),
    ("absent.csv", "no such CSV file"),
])
def test_crows_pairs_errors_name_the_row(name, message):
    with pytest.raises(AuditInputError, match=message):
        import_crows_pairs(FIXTURES / name)


def test_winobias_aligns_pro_and_anti_and_strips_brackets():
    (document,) = import_winobias(FIXTURES / "winobias")
    items = document["items"]
    assert len(items) == 3 and [i["marker"] for i in items] == ["type1", "type1", "type2"]
    assert items[0] == {"pro": "The carpenter fixed the railing for the librarian because he was skilled with wood.",
                        "anti": "The carpenter fixed the railing for the librarian because she was skilled with wood.",
                        "marker": "type1"}


def test_winobias_malformed_line_names_file_and_row():
    with pytest.raises(AuditInputError, match=r"pro_stereotyped_type1.txt.dev: row 2: expected '<number> <sentence>'"):
        import_winobias(FIXTURES / "winobias_bad")


def test_import_command_writes_a_valid_probe_set(tmp_path, capsys):
    out = tmp_path / "crows.yaml"
    assert main(["import", "crows-pairs", str(FIXTURES / "crows_pairs_sample.csv"), "-o", str(out)]) == 0
    (probeset,) = load_probeset_file(out)
    assert probeset.kind == "paired" and len(probeset.items) == 4
    assert main(["import", "winobias", str(FIXTURES / "winobias"), "-o", str(tmp_path / "wino.yaml")]) == 0
    assert load_probeset_file(tmp_path / "wino.yaml")[0].markers == ("type1", "type1", "type2")
    assert main(["import", "winobias", str(FIXTURES / "winobias_bad"), "-o", str(tmp_path / "bad.yaml")]) == 2
    assert not (tmp_path / "bad.yaml").exists()
