"""Random neuron sets matched to flagged neurons on their layer AND their activation statistics on general text.

A neuron that fires on 30 % of tokens moves a model more when ablated than one that fires on 3 %, so random
sets matched on layer only can make any busy neuron look causal. Here each flagged neuron is replaced by a
random pick among its nearest neighbours in the same layer on (activation density, mean activation) over the
reference corpus, both as within-layer percentile ranks (scale-free), drawn without replacement within a
set and never from the excluded (flagged) neurons.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

POOL = 20  # each flagged neuron is replaced by a random one of its POOL nearest unused neighbours


def layer_ranks(features: np.ndarray) -> np.ndarray:
    """Within-layer percentile ranks in (0, 1] of each feature: ``features`` is (layers, neurons, features)."""
    features = np.asarray(features, dtype=np.float64)
    ranks = rankdata(features, axis=1) / features.shape[1]
    return ranks


def matched_null_sets(target: np.ndarray, features: np.ndarray, *, n_sets: int, seed: int,
                      exclude: np.ndarray | None = None, pool: int = POOL) -> list[np.ndarray]:
    """``n_sets`` random sets, the j-th neuron of each drawn for the j-th neuron of ``target`` (flat indices
    over layers × neurons) from the same layer: uniformly among the ``pool`` nearest not-yet-used neurons on
    the within-layer ranks of ``features`` (layers, neurons, features). ``exclude`` (flat indices, default the
    target) are never drawn."""
    rng = np.random.default_rng(seed)
    target = np.asarray(target, dtype=np.int64)
    n_layers, n_neurons = features.shape[:2]
    ranks = layer_ranks(features).reshape(n_layers * n_neurons, -1)
    banned = np.zeros(n_layers * n_neurons, bool)
    banned[target] = True
    if exclude is not None:
        banned[np.asarray(exclude, dtype=np.int64)] = True
    candidates = []  # per target neuron: the neurons of its layer by distance, nearest first
    for flat in target:
        layer = flat // n_neurons
        others = np.arange(layer * n_neurons, (layer + 1) * n_neurons)
        others = others[~banned[others]]
        distance = np.linalg.norm(ranks[others] - ranks[flat], axis=1)
        candidates.append(others[np.argsort(distance, kind="stable")])
    for layer, count in zip(*np.unique(target // n_neurons, return_counts=True)):
        available = n_neurons - int(banned[layer * n_neurons:(layer + 1) * n_neurons].sum())
        if count > available:
            raise ValueError(f"layer {int(layer)} has {available} neurons to match {int(count)} flagged ones")
    sets = []
    for _ in range(n_sets):
        used: set[int] = set()
        chosen = np.empty_like(target)
        for slot in rng.permutation(len(target)):
            free = [int(c) for c in candidates[slot][:pool + len(used)] if int(c) not in used][:pool]
            if not free:  # every near neighbour is taken: the nearest unused one further out
                free = [next(int(c) for c in candidates[slot] if int(c) not in used)]
            pick = free[rng.integers(len(free))]
            used.add(pick)
            chosen[slot] = pick
        sets.append(chosen)
    return sets


def permuted_scales(scales: np.ndarray, *, seed: int, n_sets: int,
                    strata: np.ndarray | None = None) -> list[np.ndarray]:
    """Null dampenings for an all-neuron intervention (AurA): the per-neuron ``scales`` (layers, neurons;
    1 = untouched) shuffled among the neurons of each layer — or of each within-layer stratum of ``strata``
    (same shape, integer labels, e.g. density deciles) — so a random set gets the same amount of dampening
    in every layer (and activation stratum), at random neurons."""
    rng = np.random.default_rng(seed)
    scales = np.asarray(scales, dtype=np.float64)
    groups = np.zeros(scales.shape, np.int64) if strata is None else np.asarray(strata, dtype=np.int64)
    members = [[np.flatnonzero(groups[layer] == g) for g in np.unique(groups[layer])]
               for layer in range(scales.shape[0])]
    found = []
    for _ in range(n_sets):
        shuffled = scales.copy()
        for layer, parts in enumerate(members):
            for part in parts:
                shuffled[layer, part] = scales[layer, rng.permutation(part)]
        found.append(shuffled)
    return found


def density_strata(density: np.ndarray, *, n_bins: int = 10) -> np.ndarray:
    """Within-layer decile (0 … n_bins − 1) of each neuron's activation density (``density``: layers × neurons)."""
    ranks = layer_ranks(np.asarray(density)[..., None])[..., 0]
    return np.minimum((ranks * n_bins).astype(np.int64), n_bins - 1)
