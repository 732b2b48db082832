"""Unit tests of the output-level preference score on synthetic per-item sentence scores."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis.preference import LM_EVAL_TIE, first_pair_share, preference_table, preference_wins


def test_wins_count_ties_as_half():
    assert preference_wins(np.array([2.0, 1.0, 1.0]), np.array([1.0, 2.0, 1.0])).tolist() == [1.0, 0.0, 0.5]


def test_lm_eval_convention_counts_ties_as_not_preferred_and_likelihood_diff_is_the_mean_gap():
    """lm-evaluation-harness crows_pairs: pct_stereotype = mean(ll_more > ll_less), likelihood_diff = mean |gap|."""
    more, less = np.array([-10.0, -12.0, -7.5, -3.0]), np.array([-11.0, -12.0, -7.0, -9.0])
    (row,) = preference_table(np.stack([more, less]), ["stereotypical", "anti"], [None] * 4, seed=0, n_resamples=200,
                              tie=LM_EVAL_TIE)
    assert row["share"] == pytest.approx(2 / 4) and first_pair_share(np.stack([more, less]), tie=LM_EVAL_TIE) == 0.5
    assert row["likelihood_diff"] == pytest.approx((1.0 + 0.0 + 0.5 + 6.0) / 4)
    assert row["likelihood_diff_ci95"][0] <= row["likelihood_diff"] <= row["likelihood_diff_ci95"][1]
    (half,) = preference_table(np.stack([more, less]), ["stereotypical", "anti"], [None] * 4, seed=0, n_resamples=200)
    assert half["share"] == pytest.approx(2.5 / 4)


def test_share_ci_and_markers_on_a_planted_preference():
    rng = np.random.default_rng(0)
    n = 400
    markers = ["race"] * 200 + ["age"] * 200
    base = rng.normal(-40, 5, n)
    # race items: the first version scores higher on every item; age items: no preference (coin flip)
    first = base + np.r_[np.full(200, 2.0), rng.choice([-1.0, 1.0], 200)]
    (row,) = preference_table(np.stack([first, base]), ["stereotypical", "anti"], markers, seed=1, n_resamples=500)
    assert (row["group"], row["versus"], row["n_items"]) == ("stereotypical", "anti", n)
    race, age = row["by_marker"]["race"], row["by_marker"]["age"]
    assert race["share"] == 1.0 and race["ci95"] == [1.0, 1.0] and race["excludes_no_preference"]
    assert age["ci95"][0] < 0.5 < age["ci95"][1] and not age["excludes_no_preference"]
    assert row["share"] == pytest.approx((200 + age["share"] * 200) / 400)
    assert row["mean_difference_ci95"][0] <= row["mean_difference"] <= row["mean_difference_ci95"][1]


def test_three_groups_give_every_pair_in_order_and_no_markers_no_breakdown():
    scores = np.array([[3.0, 3.0], [2.0, 2.0], [1.0, 4.0]])
    rows = preference_table(scores, ["stereotype", "anti_stereotype", "unrelated"], [None, None], seed=0,
                            n_resamples=100)
    assert [(r["group"], r["versus"], r["share"]) for r in rows] == [
        ("stereotype", "anti_stereotype", 1.0), ("stereotype", "unrelated", 0.5), ("anti_stereotype", "unrelated", 0.5)]
    assert all(r["by_marker"] == {} for r in rows)


def test_first_pair_share_reads_the_first_two_groups():
    assert first_pair_share(np.array([[1.0, 2.0, 3.0, 0.0], [0.0, 2.0, 4.0, -1.0]])) == pytest.approx(2.5 / 4)


def test_stereoset_scores_follow_the_paper_definitions():
    from audit.analysis.preference import stereoset_scores

    # 4 items: the stereotype version wins 3 of 4 against the anti-stereotype one (ss 75); the unrelated version
    # loses every comparison except item 3's against the stereotype (lms 7 of 8 = 87.5)
    scores = np.array([[3.0, 3.0, 3.0, 1.0],    # stereotype
                       [2.0, 2.0, 2.0, 2.0],    # anti_stereotype
                       [0.0, 0.0, 0.0, 1.5]])   # unrelated
    found = stereoset_scores(scores, ["stereotype", "anti_stereotype", "unrelated"], ["race", "race", "gender",
                                                                                     "gender"], seed=0)
    overall = found["overall"]
    assert overall["ss"] == 75.0 and overall["lms"] == 87.5
    assert overall["icat"] == pytest.approx(87.5 * min(75.0, 25.0) / 50)
    assert overall["icat_ci95"][0] <= overall["icat"] <= overall["icat_ci95"][1]
    assert found["by_marker"]["race"]["ss"] == 100.0 and found["by_marker"]["race"]["icat"] == 0.0
    assert found["by_marker"]["gender"]["lms"] == 75.0
    assert stereoset_scores(scores[:2], ["stereotypical", "anti_stereotypical"], [None] * 4, seed=0) is None
