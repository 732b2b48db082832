"""Audit diff through a neuron matching: flagged neurons of two models side by side, and output-score change.

Pure functions over per-neuron arrays (flattened layer × neuron, as the analyses use) and the partner
indices from :func:`audit.analysis.correlation.match`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Callable

import numpy as np

from .ablation import cosine_shift, disparity_change_ci


@dataclass(frozen=True)
class FlagDiff:
    """Counts of flagged neurons in A and B through the matching (A→B partners and B→A partners)."""

    n_flagged_a: int
    n_flagged_b: int
    overlap: int  # flagged in A, and B flags its best partner
    became_flagged: np.ndarray  # B neurons flagged in B whose best partner in A was not flagged
    stopped_flagged: np.ndarray  # A neurons flagged in A whose best partner in B is not flagged


def flag_diff(flagged_a: np.ndarray, flagged_b: np.ndarray, partner_of_a: np.ndarray,
              partner_of_b: np.ndarray) -> FlagDiff:
    """Compare boolean flags of A's and B's neurons (flattened) through each side's best partner.

    Persistence is reported beside each pair rather than required here: a finding carries over when the
    neuron that plays its role in B is flagged too, however well the two correlate elsewhere.
    """
    kept = flagged_a & flagged_b[partner_of_a]
    new = flagged_b & ~flagged_a[partner_of_b]
    return FlagDiff(n_flagged_a=int(flagged_a.sum()), n_flagged_b=int(flagged_b.sum()), overlap=int(kept.sum()),
                    became_flagged=np.flatnonzero(new), stopped_flagged=np.flatnonzero(flagged_a & ~kept))


def loglik_pair_gap(values: np.ndarray) -> float:
    """Causal LMs (groups × items log-likelihood): the largest |mean difference| between two groups."""
    return float(max(abs((values[a] - values[b]).mean()) for a, b in combinations(range(values.shape[0]), 2)))


def embedding_pair_gap(embeddings: np.ndarray) -> float:
    """Encoders (groups × items × d): the largest 1 − mean cosine between an item's versions in two groups."""
    return float(max(cosine_shift(embeddings[a], embeddings[b]).mean()
                     for a, b in combinations(range(embeddings.shape[0]), 2)))


def excess_pair_gap(excess: np.ndarray) -> float:
    """Encoders (group pairs × items of group-swap shift − control-swap shift): the largest mean excess."""
    return float(np.max(excess.mean(axis=1)))


def output_change(values_a: np.ndarray, values_b: np.ndarray, *, causal: bool, seed: int,
                  n_resamples: int = 1000, gap: Callable[[np.ndarray], float] | None = None) -> dict:
    """The output-level bias score (the policy's ``output_disparity``) in A and B on the same items, and B − A
    with a paired bootstrap 95% CI over items (axis 1). ``gap`` replaces the score of ``causal``'s kind."""
    gap = gap or (loglik_pair_gap if causal else embedding_pair_gap)
    a, b = gap(values_a), gap(values_b)
    low, high = disparity_change_ci(gap, values_a, values_b, seed=seed, n_resamples=n_resamples)
    return {"a": a, "b": b, "delta": b - a, "ci95": [low, high], "excludes_zero": bool(low > 0 or high < 0)}
