"""Unit tests of the disparity statistics on small synthetic arrays (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis.disparity import (
    REST,
    Contrast,
    consistency_table,
    contrasts,
    group_selectivity,
    marker_consistency,
    output_disparity_table,
    paired_auroc,
    paired_effect,
    selective_counts,
    wilcoxon_p,
)
from audit.analysis.lape import lape


def test_contrasts_pairs_and_rest():
    assert [c.label for c in contrasts(["a", "b"])] == ["a vs b"]
    labels = [c.label for c in contrasts(["a", "b", "c"])]
    assert labels == ["a vs b", "a vs c", "b vs c", "a vs rest", "b vs rest", "c vs rest"]


def test_paired_statistics_by_hand():
    d = np.array([[1.0], [2.0], [0.0], [-1.0]])
    assert paired_auroc(d)[0] == pytest.approx(0.5 + 0.125)
    assert paired_effect(d)[0] == pytest.approx(0.5 / np.std([1, 2, 0, -1], ddof=1))
    assert wilcoxon_p(np.zeros((5, 2))).tolist() == [1.0, 1.0]


def test_signed_rank_p_is_scipys_wilcoxon_with_zeros_and_ties():
    from scipy import stats

    rng = np.random.default_rng(3)
    d = np.round(rng.normal(size=(40, 300)) * rng.choice([1, 2, 8, 1000], size=300)) / 4  # ties, zeros, none
    d[:, 0], d[:39, 1], d[:, 2] = 0.0, 0.0, 0.5  # all zero; one nonzero; all tied
    live = (d != 0).any(axis=0)
    expected = np.ones(d.shape[1])
    expected[live] = np.nan_to_num(stats.wilcoxon(d[:, live], axis=0, zero_method="wilcox",
                                                  method="approx").pvalue, nan=1.0)
    np.testing.assert_allclose(wilcoxon_p(d), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(wilcoxon_p(d, block=7), wilcoxon_p(d))  # column blocks change nothing
    # by hand: d = 3, −1, 0, 2, 2 → zeros dropped, |d| ranks 4, 1, 2.5, 2.5; R+ = 9, n = 4, one tie of 2
    z = (9 - 4 * 5 / 4) / np.sqrt(4 * 5 * 9 / 24 - (2 ** 3 - 2) / 48)
    assert wilcoxon_p(np.array([[3.0], [-1.0], [0.0], [2.0], [2.0]]))[0] == pytest.approx(2 * stats.norm.sf(z))


def test_planted_group_column_ranks_first_and_rest_contrast():
    rng = np.random.default_rng(0)
    responses = rng.normal(size=(3, 60, 40))
    responses[0, :, 5] += 1.5  # group a more active on neuron 5
    stats = group_selectivity(responses, ["a", "b", "c"])
    rest = [c.label for c in stats.contrasts].index("a vs rest")
    assert np.argmax(stats.effect[rest]) == 5 and stats.q_value[rest, 5] < 1e-6
    assert stats.auroc[rest, 5] > 0.8
    counts = selective_counts(stats, ["a", "b", "c"], n_layers=2)
    assert counts["q_and_effect"]["per_group"]["a"] >= 1
    assert counts["q_and_effect"]["per_layer"]["a"][0] >= 1  # neuron 5 lies in layer 0 of 20 per layer


def test_perfectly_consistent_differences_get_the_capped_effect():
    from audit.analysis.disparity import EFFECT_CAP

    d = np.array([[0.5, -0.2, 0.0], [0.5, -0.2, 0.0], [0.5, -0.2, 0.0]])
    assert paired_effect(d).tolist() == [EFFECT_CAP, -EFFECT_CAP, 0.0]


def test_identical_groups_give_nothing_significant():
    responses = np.random.default_rng(1).normal(size=(1, 30, 50)).repeat(2, axis=0)
    stats = group_selectivity(responses, ["a", "b"])
    assert (stats.q_value == 1.0).all() and (stats.effect == 0).all() and (stats.auroc == 0.5).all()


def test_null_groups_are_calibrated():
    responses = np.random.default_rng(2).normal(size=(2, 40, 2000))
    stats = group_selectivity(responses, ["a", "b"])
    assert (stats.q_value < 0.05).sum() <= 1


def test_marker_consistency_penalises_single_word_neurons():
    rng = np.random.default_rng(3)
    markers = ["pronoun"] * 30 + ["noun"] * 30 + ["name"] * 30
    d = rng.normal(0, 1, size=(90, 3))
    d[:, 0] += 1.0  # the group itself: every marker kind
    d[:30, 1] += 3.0  # one word only: pronoun items
    result = marker_consistency(d, markers)
    assert result.markers == ("name", "noun", "pronoun")
    assert result.consistency[0] == 1.0 and result.consistency[1] == pytest.approx(1 / 3)
    assert result.robust_effect[0] > 0.5 and result.robust_effect[1] < 0.5
    assert paired_effect(d)[1] > paired_effect(d)[0] * 0.5  # the single-word neuron still looks strong overall


def test_lape_assigns_planted_language_neurons():
    rng = np.random.default_rng(4)
    probability = rng.uniform(0.3, 0.6, size=(3, 1000))
    probability[:, 10] = [0.95, 0.0, 0.01]
    probability[:, 20] = [0.0, 0.97, 0.9]
    result = lape(probability)
    assert result.assigned[0, 10] and not result.assigned[1:, 10].any()
    assert result.assigned[1, 20] and result.assigned[2, 20] and not result.assigned[0, 20]
    assert result.assigned.any(axis=0).sum() <= 10


def test_output_table_differences_and_cis():
    values = np.vstack([np.full(20, -3.0) + np.linspace(0, 0.1, 20), np.full(20, -3.5) + np.linspace(0, 0.1, 20)])
    table = output_disparity_table(values, ["a", "b"], seed=0, n_resamples=500)
    (pair,) = table["pairs"]
    assert pair["difference"] == pytest.approx(0.5) and pair["ci95"] == pytest.approx([0.5, 0.5])
    assert pair["excludes_zero"] and pair["ratio"] is None  # ratios of negative log-likelihoods are not shown
    same = output_disparity_table(np.zeros((2, 10)) + 1.0, ["a", "b"], seed=0)
    assert same["pairs"][0]["difference"] == 0 and same["pairs"][0]["ci95"] == [0.0, 0.0]
    assert same["ratio"] == 1.0


def test_consistency_table_single_pair_has_no_gap():
    table = consistency_table(np.array([[0.9, 0.8, 0.7]]), [("a", "b")], seed=0, n_resamples=500)
    assert table["pairs"][0]["cosine"] == pytest.approx(0.8) and table["difference"] is None
    assert Contrast("a", REST).label == "a vs rest"
