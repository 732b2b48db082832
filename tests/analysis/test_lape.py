"""LAPE as the authors' identify.py computes it, and the deactivation matrix, checked against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis.lape import (
    deactivation_matrix,
    diagonal_dominance,
    kth_value,
    language_entropy,
    language_perplexity,
    lape,
    matched_random,
    normalised_entropy,
)


def test_kth_value_is_torch_kthvalue_of_round_n_rate():
    values = np.arange(1, 21, dtype=float)  # 20 values: round(20 * 0.95) = 19 → the 19th smallest
    assert kth_value(values, 0.95) == 19.0
    assert kth_value(np.array([3.0, 1.0, 2.0, 4.0]), 0.5) == 2.0  # round(2.0) = 2nd smallest


def test_entropy_by_hand():
    probability = np.array([[0.5, 0.0, 0.2], [0.5, 0.0, 0.0]])
    entropy = language_entropy(probability)
    assert entropy[0] == pytest.approx(np.log(2))
    assert entropy[1] == 0.0  # active nowhere: normalised shares are 0 (the authors' NaN → 0)
    assert entropy[2] == 0.0


def test_lape_follows_the_papers_filters_by_hand():
    # 2 languages × 10 neurons = 20 probabilities; filter k = round(20·0.8) = 16 → the 16th smallest (0.5)
    probability = np.array([
        [0.9, 0.0, 0.5, 0.5, 0.3, 0.2, 0.2, 0.1, 0.8, 0.0],
        [0.0, 0.9, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1, 0.8, 0.0],
    ])
    result = lape(probability, top_rate=0.2, filter_rate=0.8, activation_bar_ratio=0.8)
    assert result.probability_threshold == 0.5
    # only neurons 0, 1 and 8 have a probability strictly above 0.5; the rest are dismissed (entropy inf)
    assert np.isinf(result.entropy[2:8]).all() and np.isinf(result.entropy[9])
    assert result.entropy[0] == 0.0 == result.entropy[1] and result.entropy[8] == pytest.approx(np.log(2))
    assert result.selected.sum() == 2 and result.selected[[0, 1]].all()  # round(10·0.2) = 2 lowest entropy
    assert result.assigned.tolist()[0][:2] == [True, False] and result.assigned.tolist()[1][:2] == [False, True]
    assert not result.assigned[:, 2:].any()  # neuron 8 is above the bar in both but not among the 2 kept


def test_lape_keeps_only_top_rate_lowest_entropy():
    rng = np.random.default_rng(4)
    probability = rng.uniform(0.3, 0.6, size=(3, 1000))
    probability[:, 10] = [0.95, 0.0, 0.01]
    probability[:, 20] = [0.0, 0.97, 0.9]
    result = lape(probability)  # top_rate 0.01 of 1,000 → 10 neurons
    assert result.selected.sum() == 10
    assert result.assigned[0, 10] and not result.assigned[1:, 10].any()
    assert result.assigned[1, 20] and result.assigned[2, 20] and not result.assigned[0, 20]
    noise = lape(rng.uniform(0.3, 0.6, size=(3, 1000)))  # no language preference anywhere
    assert normalised_entropy(noise) > 0.9 > normalised_entropy(result)


def test_matched_random_keeps_layers_and_avoids_excluded():
    chosen = matched_random([2, 0, 3], 10, np.array([0, 1, 2, 20, 21]), seed=1)
    assert len(chosen) == 5
    assert np.bincount(chosen // 10, minlength=3).tolist() == [2, 0, 3]
    assert not set(chosen) & {0, 1, 2, 20, 21}
    assert matched_random([2, 0, 3], 10, np.array([]), seed=1).tolist() == \
        matched_random([2, 0, 3], 10, np.array([]), seed=1).tolist()


def test_perplexity_is_token_weighted_by_hand():
    loglik = [np.array([-1.0, -3.0])]
    tokens = [np.array([3, 1])]
    (row,) = language_perplexity(loglik, tokens, n_resamples=200)
    assert row["perplexity"] == pytest.approx(np.exp((3 * 1.0 + 1 * 3.0) / 4))
    assert row["ci95"][0] <= row["perplexity"] <= row["ci95"][1] and row["n_tokens"] == 4


def test_deactivation_matrix_ratio_and_dominance_by_hand():
    clean = [np.full(5, -2.0), np.full(5, -1.0)]
    tokens = [np.full(5, 4), np.full(5, 4)]
    # set 0 costs language 0 one nat per token and language 1 a tenth of a nat; set 1 the reverse
    ablated = [np.stack([np.full(5, -3.0), np.full(5, -2.1)]), np.stack([np.full(5, -1.1), np.full(5, -2.0)])]
    matrix = deactivation_matrix(clean, ablated, tokens, n_resamples=200)
    expected = np.array([[np.e, np.exp(0.1)], [np.exp(0.1), np.e]])
    np.testing.assert_allclose(matrix["ratio"], expected)
    np.testing.assert_allclose(matrix["low"], expected)  # identical texts: the interval has no width
    rows = diagonal_dominance(matrix["ratio"])
    assert rows[0]["own_rise"] == pytest.approx(np.e - 1)
    assert rows[0]["times"] == pytest.approx((np.e - 1) / (np.exp(0.1) - 1))
    assert diagonal_dominance(np.array([[1.5, 0.9], [0.9, 1.5]]))[0]["times"] is None  # others fell
    assert diagonal_dominance(np.array([[0.9, 1.5], [1.5, 0.9]]))[0]["times"] is None  # its own fell
