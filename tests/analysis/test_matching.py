"""Random neuron sets matched on layer and activation statistics, and AurA's null dampenings."""

from __future__ import annotations

import numpy as np

from audit.analysis.ablation import null_neuron_sets
from audit.analysis.matching import density_strata, matched_null_sets, permuted_scales


def _features(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    density = rng.beta(0.5, 3.0, size=(2, 1000))  # most neurons rarely fire, a few often
    mean = density * 0.8 + rng.normal(0, 0.01, size=(2, 1000))
    return np.stack([density, mean], axis=-1)


def test_matched_null_picks_neurons_of_similar_density():
    features = _features()
    density = features[..., 0].ravel()
    target = np.array([int(np.argsort(features[0, :, 0])[950]), 1000 + int(np.argsort(features[1, :, 0])[500])])
    matched = matched_null_sets(target, features, n_sets=50, seed=0)
    layer_only = null_neuron_sets(target, 1000, n_sets=50, seed=0)
    assert all((s // 1000).tolist() == [0, 1] and not set(s) & set(target) for s in matched)
    gap = np.mean([np.abs(density[s] - density[target]).mean() for s in matched])
    gap_layer = np.mean([np.abs(density[s] - density[target]).mean() for s in layer_only])
    assert gap < gap_layer / 4
    assert len({tuple(s) for s in matched}) > 10  # random among the nearest, not one fixed set
    again = matched_null_sets(target, features, n_sets=3, seed=0)
    assert [s.tolist() for s in again] == [s.tolist() for s in matched[:3]]


def test_matched_sets_are_drawn_without_replacement_and_skip_excluded():
    features = _features(1)
    target = np.arange(0, 40)  # 40 neighbours of each other in layer 0
    excluded = np.arange(40, 60)
    for chosen in matched_null_sets(target, features, n_sets=20, seed=2, exclude=excluded):
        assert len(set(chosen.tolist())) == 40 and not set(chosen.tolist()) & set(range(60))


def test_permuted_scales_keep_each_layer_and_stratum():
    rng = np.random.default_rng(0)
    scales = np.where(rng.random((2, 100)) < 0.3, rng.random((2, 100)), 1.0)
    strata = density_strata(rng.random((2, 100)))
    assert sorted(np.unique(strata).tolist()) == list(range(10))
    for shuffled in permuted_scales(scales, n_sets=5, seed=0, strata=strata):
        for layer in range(2):
            for s in range(10):
                part = strata[layer] == s
                assert sorted(shuffled[layer, part]) == sorted(scales[layer, part])
        assert not np.array_equal(shuffled, scales)
