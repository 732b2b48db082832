"""Unit tests of the selectivity statistics on small synthetic arrays (no model)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from audit.analysis.selectivity import (
    auroc,
    benjamini_hochberg,
    bootstrap_auroc_ci,
    cohens_d,
    concept_selectivity,
    shuffled_control,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    responses = rng.normal(size=(120, 500))
    labels = np.r_[np.ones(60, bool), np.zeros(60, bool)]
    responses[labels, 7] += 2.0  # strongly more active on positives
    responses[labels, 11] -= 1.0  # less active on positives
    return responses, labels


def test_auroc_matches_scikit_learn(data):
    responses, labels = data
    result = concept_selectivity(responses, labels)
    for column in (0, 7, 11, 499):
        assert result.auroc[column] == pytest.approx(roc_auc_score(labels, responses[:, column]))


def test_ranking_finds_both_directions(data):
    responses, labels = data
    result = concept_selectivity(responses, labels)
    assert result.ranking()[:2].tolist() == [7, 11]
    assert result.auroc[7] > 0.9 and result.auroc[11] < 0.35
    assert result.q_value[7] < 1e-6 and result.q_value[11] < 0.05
    assert result.effect_size[7] == pytest.approx(2.0, abs=0.5) and result.effect_size[11] < 0


def test_shuffled_labels_give_almost_no_significant_neuron(data):
    responses, labels = data
    assert concept_selectivity(responses, labels).significant().sum() >= 2
    for seed in range(5):
        control = shuffled_control(responses, labels, seed=seed)
        assert control.significant().sum() <= 1


def test_null_data_is_calibrated():
    rng = np.random.default_rng(1)
    responses = rng.normal(size=(80, 2000))
    labels = np.r_[np.ones(40, bool), np.zeros(40, bool)]
    result = concept_selectivity(responses, labels)
    assert result.significant().sum() == 0
    assert 0.03 < (result.p_value < 0.05).mean() < 0.08  # p-values uniform under the null


def test_constant_neurons_are_neutral_not_errors():
    responses = np.zeros((10, 3))
    responses[:5, 2] = 1.0
    result = concept_selectivity(responses, np.r_[np.ones(5, bool), np.zeros(5, bool)])
    assert result.auroc[:2].tolist() == [0.5, 0.5] and result.p_value[:2].tolist() == [1.0, 1.0]
    assert result.effect_size[:2].tolist() == [0.0, 0.0] and result.auroc[2] == 1.0


def test_benjamini_hochberg_against_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.5, np.nan])
    q = benjamini_hochberg(p)
    assert q == pytest.approx([0.05, 0.2 / 3, 0.2 / 3, 0.625, 1.0])  # NaN counts as a test with p = 1


def test_cohens_d_and_auroc_helpers():
    positive, negative = np.array([[2.0], [4.0]]), np.array([[0.0], [2.0]])
    assert cohens_d(positive, negative)[0] == pytest.approx(2 / np.sqrt(2))
    assert auroc(positive, negative)[0] == pytest.approx(0.875)


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded(data):
    responses, labels = data
    low, high = bootstrap_auroc_ci(responses[labels][:, [7, 0]], responses[~labels][:, [7, 0]], seed=3)
    again = bootstrap_auroc_ci(responses[labels][:, [7, 0]], responses[~labels][:, [7, 0]], seed=3)
    result = concept_selectivity(responses, labels)
    assert np.array_equal(low, again[0]) and np.array_equal(high, again[1])
    assert low[0] <= result.auroc[7] <= high[0] and high[0] - low[0] < 0.15
    assert low[1] <= result.auroc[0] <= high[1]


def test_label_shape_is_checked(data):
    responses, _ = data
    with pytest.raises(ValueError, match="labels"):
        concept_selectivity(responses, np.ones(3, bool))
