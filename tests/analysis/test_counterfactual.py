"""Counterfactual sensitivity: which words are swapped, which control substitutes are chosen, the table."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis import counterfactual as cf


def test_swapped_and_shared_words_come_from_the_versions_alignment():
    versions = ["She told her manager that the quarterly report was late.",
                "He told his manager that the quarterly report was late."]
    assert cf.differing_words(versions) == [("She", "He"), ("her", "his")]
    assert cf.shared_words(versions) == ["quarterly", "manager", "report", "told", "that", "late", "the", "was"]
    three = ["Ana baked bread.", "Bo baked bread.", "Cy baked bread."]
    assert cf.differing_words(three) == [("Ana", "Bo"), ("Ana", "Cy"), ("Bo", "Cy")]
    assert cf.shared_words(three) == ["baked", "bread"]


def test_the_control_substitute_matches_the_group_words_similarity_and_is_no_inflection():
    candidates = [("managers", 0.9), ("supervisor", 0.7), ("boss", 0.55), ("employee", 0.4), ("c3po", 0.56)]
    assert cf.matched_substitute("manager", candidates, 0.57) == ("boss", 0.55)
    assert cf.matched_substitute("manager", candidates, 0.85) == ("supervisor", 0.7)  # not the plural
    assert cf.matched_substitute("manager", [("managing", 0.8)], 0.8) is None
    assert cf.inflection("report", "reports") and not cf.inflection("report", "repair")


def test_replacing_a_word_keeps_capitals_and_whole_words_only():
    assert cf.replace_word("Manager meetings with the manager.", "manager", "boss") == \
        "Manager meetings with the boss."
    assert cf.replace_word("Manager of managers", "Manager", "boss") == "Boss of managers"


def test_control_edits_take_the_longest_shared_words_with_a_substitute():
    versions = ["She told her manager about the report.", "He told his manager about the report."]
    neighbours = {"manager": [("boss", 0.6)], "report": [("memo", 0.5), ("reports", 0.9)], "about": []}
    edits = cf.control_edits(versions, lambda word: neighbours.get(word, []), 0.6)
    assert edits == [("manager", "boss", 0.6), ("report", "memo", 0.5)]
    similar = {("She", "He"): 0.8, ("her", "his"): 0.6}
    assert cf.group_word_similarity(versions, lambda a, b: similar.get((a, b))) == pytest.approx(0.7)
    assert cf.group_word_similarity(versions, lambda a, b: None) is None


def test_sensitivity_rows_are_paired_over_items_with_a_control():
    rng = np.random.default_rng(0)
    group = 0.2 + 0.02 * rng.standard_normal((1, 40))
    control = 0.05 + 0.01 * rng.standard_normal(40)
    control[:5] = np.nan  # items without a control drop out of both means
    (row,) = cf.sensitivity_rows(group, control, [("f", "m")], seed=0, n_resamples=500)
    kept = group[0, 5:]
    assert row["n_items"] == 35
    assert row["group_shift"] == pytest.approx(kept.mean())
    assert row["excess"] == pytest.approx((kept - control[5:]).mean())
    assert row["excess_ci95"][0] < row["excess"] < row["excess_ci95"][1]
    assert row["ratio"] == pytest.approx(kept.mean() / control[5:].mean())
    assert row["ratio_ci95"][0] < row["ratio"] < row["ratio_ci95"][1]
    (same,) = cf.sensitivity_rows(np.full((1, 3), 0.1), np.full(3, 0.1), [("f", "m")], seed=0)
    assert same["excess"] == 0 and same["excess_ci95"] == [0.0, 0.0] and same["ratio"] == 1.0
