"""Resolved, corrected Monte Carlo tests: the number of random sets, Besag–Clifford stopping, Holm."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis.dose import dose_ladder, off_target_cost, specificity_ratio
from audit.analysis.multiple_testing import SequentialTest, chain_graph, graphical_test, holm, sets_needed


def test_holm_matches_a_hand_computation():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → stepped max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]).tolist() == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]).tolist() == [0.02]  # one test: no correction
    with pytest.raises(ValueError, match="probabilities"):
        holm([0.1, 1.5])


def test_sets_needed_lets_the_smallest_p_clear_the_corrected_threshold():
    for m in (1, 4, 7, 24):
        n = sets_needed(m)
        assert n >= m / 0.05 - 1 and 1 / (n + 1) * m < 0.05  # the bound, and the strict verdict threshold
        assert m / n >= 0.05 - 1e-12  # and no more sets than that
    assert sets_needed(4) == 80
    with pytest.raises(ValueError, match="n_tests"):
        sets_needed(0)


def test_besag_clifford_stops_early_on_a_null_like_target():
    rng = np.random.default_rng(0)
    test = SequentialTest(0.0, n_max=1000, h=10)
    while not test.done:
        test.add(rng.normal(size=7))
    assert test.stopped_early and test.exceedances == 10 and len(test.values) < 60
    assert test.values[-1] >= 0.0  # the last kept draw is the h-th exceedance
    assert test.p_value() == pytest.approx(10 / len(test.values))


def test_sequential_test_of_a_strong_target_draws_every_set():
    test = SequentialTest(5.0, n_max=80, h=10)
    test.add(np.zeros(50))
    assert not test.done
    test.add(np.r_[np.zeros(29), 6.0, np.zeros(10)])  # only the first 30 are kept
    assert test.done and not test.stopped_early and len(test.values) == 80
    assert test.p_value() == pytest.approx(2 / 81)
    smaller = SequentialTest(-1.0, n_max=5, larger_is_stronger=False)
    smaller.add([0.0, -2.0, 0.0, 0.0, 0.0])
    assert smaller.p_value() == pytest.approx(2 / 6)


def test_dose_ladder():
    assert dose_ladder(250, limit=1000) == [1, 3, 10, 30, 100]
    assert dose_ladder(5000, limit=300) == [1, 3, 10, 30, 100, 300]
    assert dose_ladder(2, limit=100) == [1]


def test_off_target_cost_and_specificity_with_cis():
    rng = np.random.default_rng(0)
    clean = rng.normal(-3.0, 0.2, size=40)
    cost = off_target_cost(clean, clean - 0.1, np.full(40, 0.02), seed=0, n_resamples=200)
    change = np.exp(-(clean.mean() - 0.1)) - np.exp(-clean.mean())  # exp(−mean ablated) − exp(−mean clean)
    assert cost["perplexity_change"] == pytest.approx(change)
    assert cost["perplexity_change_ci"][0] <= cost["perplexity_change"] <= cost["perplexity_change_ci"][1]
    assert cost["kl"] == pytest.approx(0.02) and cost["kl_ci"] == pytest.approx([0.02, 0.02])
    ratio = specificity_ratio(np.full(30, 0.4) + rng.normal(0, 0.01, 30), np.full(40, 0.02), seed=0, n_resamples=200)
    assert ratio["value"] == pytest.approx(20.0, rel=0.02) and ratio["ci"][0] < ratio["value"] < ratio["ci"][1]
    assert specificity_ratio(np.ones(3), np.zeros(3), seed=0, n_resamples=200)["value"] is None


def test_graphical_test_of_single_hypothesis_chains_is_holm():
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=int(rng.integers(1, 7)))
        result = graphical_test(chain_graph([1] * len(p)), lambda i: p[i])
        assert result.adjusted == pytest.approx(list(holm(p)))
        assert all(result.tested)


def test_graphical_test_of_one_chain_is_fixed_sequence_and_stops_at_the_first_failure():
    p = [0.01, 0.03, 0.2, 0.001]
    asked = []
    result = graphical_test(chain_graph([4]), lambda i: asked.append(i) or p[i])
    # fixed sequence: adjusted p_i = max of the raw p's up to i; the 4th is never run after the 3rd fails
    assert result.adjusted[:3] == pytest.approx([0.01, 0.03, 0.2]) and result.adjusted[3] is None
    assert asked == [0, 1, 2] and result.tested == [True, True, True, False]
    assert result.rejected() == [True, True, False, False]


def test_graphical_test_of_two_chains_matches_a_hand_computation():
    # chains (0 → 1) and (2 → 3), each head starting with w = 1/2; hand computation of Bretz et al. (2009):
    # step 1: p/w = 0.02 (node 0), 0.08 (node 2) → node 0 adjusted 0.02, its weight to node 1 (w = 1/2)
    # step 2: node 1 0.04 < node 2 0.08 → 0.04; the chain is done, its weight goes to node 2 (w = 1)
    # step 3: node 2 0.04 → max(0.04, 0.04) = 0.04; its weight to node 3 (w = 1): 0.5
    p = [0.01, 0.02, 0.04, 0.5]
    result = graphical_test(chain_graph([2, 2]), lambda i: p[i])
    assert result.adjusted == pytest.approx([0.02, 0.04, 0.04, 0.5])
    assert result.rejected() == [True, True, True, False]
    # Holm over all four would reject node 0 only (4 × 0.01 = 0.04, then 3 × 0.02 = 0.06)
    assert list(holm(p) < 0.05) == [True, False, False, False]


def test_graphical_test_never_rejects_more_than_alpha_under_the_global_null():
    rng = np.random.default_rng(7)
    graph = chain_graph([3, 2, 4])
    rejections = sum(any(graphical_test(graph, lambda i, p=rng.uniform(size=9): p[i]).rejected())
                     for _ in range(4000))
    assert rejections / 4000 < 0.05 + 3 * np.sqrt(0.05 * 0.95 / 4000)


def test_chain_graph_weights_and_transitions():
    graph = chain_graph([2, 0, 1])
    assert list(graph.weights) == [0.5, 0.0, 0.5]
    assert graph.transitions.tolist() == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]
    assert chain_graph([3]).transitions[2].sum() == 0  # a lone chain's last test has nowhere to pass its α
