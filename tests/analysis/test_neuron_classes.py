"""Neuron classes from W_out·W_U statistics: synthetic arrays with known classes."""

from __future__ import annotations

import numpy as np

from audit.analysis.neuron_classes import CLASSES, ClassRules, classify, counts_per_layer, robust_z


def population(seed: int = 0, shape=(3, 200)):
    rng = np.random.default_rng(seed)
    kurtosis = rng.uniform(-0.5, 3.0, shape)
    skew = rng.normal(0, 0.3, shape)
    variance = np.exp(rng.normal(0, 0.2, shape))
    norm = np.exp(rng.normal(0, 0.1, shape))
    return kurtosis, skew, variance, norm


def test_each_planted_neuron_gets_its_class_and_the_rest_none():
    kurtosis, skew, variance, norm = population()
    kurtosis[2, 5], skew[2, 5] = 40.0, 3.0  # prediction
    kurtosis[2, 6], skew[2, 6] = 25.0, -2.0  # suppression
    variance[0, 7] = 20.0  # partition: far above the typical neuron
    norm[1, 8], variance[1, 8] = 8.0, 0.5  # entropy: large norm, the unembedding reads little of it
    labels = classify(kurtosis, skew, variance, norm)
    assert labels.shape == (3, 200)
    assert (labels[2, 5], labels[2, 6], labels[0, 7], labels[1, 8]) == ("prediction", "suppression", "partition",
                                                                        "entropy")
    assert (labels != "").sum() == 4
    counts = counts_per_layer(labels)
    assert set(counts) == set(CLASSES) and counts["prediction"] == [0, 0, 1] and counts["entropy"] == [0, 1, 0]


def test_kurtosis_threshold_is_strict_and_configurable():
    kurtosis, skew, variance, norm = population()
    kurtosis[0, 0], skew[0, 0] = 10.0, 1.0
    assert classify(kurtosis, skew, variance, norm)[0, 0] == ""
    assert classify(kurtosis, skew, variance, norm, rules=ClassRules(kurtosis=9.0))[0, 0] == "prediction"


def test_large_norm_alone_is_not_an_entropy_neuron():
    kurtosis, skew, variance, norm = population()
    norm[1, 8] = 8.0
    variance[1, 8] = 64.0  # the unembedding reads its direction as much as any other's: not null-space
    assert classify(kurtosis, skew, variance, norm)[1, 8] != "entropy"


def test_robust_z_ignores_outliers_and_constant_input():
    values = np.r_[np.linspace(-1, 1, 101), 1e6, -1e6]
    z = robust_z(values)
    # MAD here is the median absolute deviation, 0.52
    assert abs(z[50]) < 1e-9 and z[-2] > 1e4 and abs(z[0] + 1.0 / (1.4826 * 0.52)) < 0.01
    assert (robust_z(np.ones(5)) == 0).all()
