"""Acceptance: the importers on the real public fairness benchmarks, when a reviewer points at them.

Set ``NEURON_AUDIT_FAIRNESS_DATA`` to a folder holding ``crows-pairs/crows_pairs_anonymized.csv`` (nyu-mll/crows-pairs),
``winobias/`` (uclanlp/corefBias WinoBias/wino/data) and optionally ``stereoset/dev.json`` (moinnadeem/StereoSet);
each test is skipped when its files are absent. The files are never part of this repository.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from audit.probes.crows_pairs import import_crows_pairs
from audit.probes.export import to_yaml
from audit.probes.stereoset import import_stereoset
from audit.probes.winobias import import_winobias

pytestmark = pytest.mark.benchmark_data
ROOT = Path(os.environ.get("NEURON_AUDIT_FAIRNESS_DATA", "/nonexistent"))


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"set NEURON_AUDIT_FAIRNESS_DATA to a folder with {path.relative_to(ROOT)}")
    return path


def test_crows_pairs_keeps_every_row_in_order_with_sent_more_as_stereotypical():
    path = need(ROOT / "crows-pairs" / "crows_pairs_anonymized.csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    (document,) = import_crows_pairs(path)
    items = document["items"]
    assert len(items) == len(rows) == 1508
    assert all(i["stereotypical"] == r["sent_more"].strip() and i["anti_stereotypical"] == r["sent_less"].strip()
               for i, r in zip(items, rows))
    assert sum(i["meta"]["stereo_antistereo"] == "antistereo" for i in items) == 218
    assert len({i["id"] for i in items}) == 1508
    split = import_crows_pairs(path, split=True)
    assert len(split) == 9 and sum(len(d["items"]) for d in split) == 1508
    to_yaml([document, *split], source=str(path))  # every set validates


def test_winobias_keeps_every_line_and_flags_non_minimal_pairs():
    folder = need(ROOT / "winobias")
    stereotype, gender = import_winobias(folder, grouping="both")
    assert len(stereotype["items"]) == 4 * 396
    assert {i["meta"]["split"] for i in stereotype["items"]} == {"dev", "test"}
    flagged = [i["id"] for i in stereotype["items"] if not i["meta"]["minimal"]]
    assert 10 <= len(flagged) <= 30 and "pro_stereotyped_type2.txt.test:382" in flagged
    assert len(gender["items"]) == len(stereotype["items"]) - 2  # two pairs keep one pronoun gender
    assert all("she" in f"{i['female']} ".lower() or "her" in i["female"].lower() for i in gender["items"])
    to_yaml([stereotype, gender], source=str(folder))


def test_stereoset_intrasentence_imports_every_example():
    path = need(ROOT / "stereoset" / "dev.json")
    (document,) = import_stereoset(path)
    assert len(document["items"]) > 2000 and {"stereotype", "anti_stereotype", "unrelated"} <= set(document["items"][0])
    to_yaml([document], source=str(path))
