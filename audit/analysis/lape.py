"""Language-specific neurons by language activation probability entropy (LAPE, Tang et al. 2024).

Pure function over per-group token activation probabilities shaped (groups, neurons).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Lape:
    """Language-activation-probability-entropy result (Tang et al. 2024)."""

    probability: np.ndarray  # (groups, neurons): share of tokens with activation > 0
    entropy: np.ndarray  # (neurons,): entropy of the probabilities normalised across groups
    probability_threshold: float
    entropy_threshold: float
    assigned: np.ndarray  # (groups, neurons) bool: neuron is specific to that group


def lape(probability: np.ndarray, *, probability_quantile: float = 0.95, entropy_quantile: float = 0.01) -> Lape:
    """Language-specific neurons: probability at or above the ``probability_quantile`` of all (group, neuron)
    probabilities for some group, and entropy in the lowest ``entropy_quantile`` of all neurons.
    Each kept neuron is assigned to every group where its probability passes the threshold."""
    probability = np.asarray(probability, dtype=np.float64)
    total = probability.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, probability / total, 1.0 / probability.shape[0])
        entropy = -(np.where(share > 0, share * np.log(share), 0.0)).sum(axis=0)
    p_threshold = float(np.quantile(probability, probability_quantile))
    e_threshold = float(np.quantile(entropy, entropy_quantile))
    passes = probability >= p_threshold  # ">=": with saturated probabilities the quantile can equal the max
    keep = passes.any(axis=0) & (entropy <= e_threshold)
    return Lape(probability=probability, entropy=entropy, probability_threshold=p_threshold,
                entropy_threshold=e_threshold, assigned=passes & keep)
