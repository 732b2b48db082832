"""The deactivation heat map: one labelled cell per value, axis titles, colour by log distance from 1."""

from __future__ import annotations

import re

from audit.results import plots


def test_heatmap_cells_labels_and_axis_titles():
    svg = plots.heatmap(["en (12)", "fr (9)", "random (10)"], ["en", "fr"], [[2.0, 1.0], [1.0, 0.5], [1.0, None]],
                        "t", x_title="perplexity measured on", y_title="neurons set to zero")
    assert svg.count("<rect") == 6 and "×2.00" in svg and "×0.50" in svg and "–" in svg
    assert "perplexity measured on" in svg and "neurons set to zero" in svg and "random (10)" in svg
    fills = re.findall(r'fill="(rgb\([^)]*\))"', svg)
    assert fills[0] == "rgb(255,63,63)"  # ×2: the largest log distance, full red
    assert fills[3] == "rgb(63,63,255)"  # ×0.5: the same log distance below 1, full blue
    assert fills[1] == "rgb(255,255,255)"  # ×1: white
