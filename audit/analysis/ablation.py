"""Statistics for ablation validation: random-neuron null sets, null comparisons, specificity,
output-space separability and output disparity. Pure functions over arrays: no model, no report code.
"""

from __future__ import annotations

from itertools import combinations
from typing import Callable

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def null_neuron_sets(target: np.ndarray, n_neurons: int, *, n_sets: int, seed: int) -> list[np.ndarray]:
    """Random neuron sets matched to ``target`` (flat indices): the j-th null neuron lies in the same layer
    as the j-th target neuron, so per-layer counts match; target neurons are never drawn."""
    rng = np.random.default_rng(seed)
    target = np.asarray(target, dtype=np.int64)
    layers = target // n_neurons
    sets = []
    for _ in range(n_sets):
        chosen = np.empty_like(target)
        for layer in np.unique(layers):
            slots = np.flatnonzero(layers == layer)
            pool = np.setdiff1d(np.arange(layer * n_neurons, (layer + 1) * n_neurons), target)
            chosen[slots] = rng.choice(pool, size=len(slots), replace=False)
        sets.append(chosen)
    return sets


def null_comparison(values: np.ndarray, *, larger_is_stronger: bool = True) -> dict:
    """``values[0]`` is the target's effect, ``values[1:]`` the nulls'. Returns effect, null mean/std/n,
    z-score and the empirical p = (1 + #null at least as strong) / (1 + n)."""
    values = np.asarray(values, dtype=np.float64)
    effect, null = values[0], values[1:]
    std = null.std(ddof=1) if len(null) > 1 else 0.0
    z = (effect - null.mean()) / std if std > 0 else None
    stronger = null >= effect if larger_is_stronger else null <= effect
    return {"effect": effect, "null": {"mean": null.mean(), "std": std, "n": len(null), "values": null}, "z": z,
            "p_value": (1 + int(stronger.sum())) / (1 + len(null))}


def specificity_comparison(on_positive: np.ndarray, on_negative: np.ndarray) -> dict:
    """The specificity ratio of the flagged set (index 0) against the null sets' ratios.

    A ratio with a zero denominator (the ablation changed no negative text) is undefined: the flagged set's
    is reported as null with the reason, and undefined null ratios are left out of the null distribution."""
    ratio = specificity(on_positive, on_negative)
    finite = np.isfinite(ratio)
    null = ratio[1:][finite[1:]]
    dropped = int((~finite[1:]).sum())
    if finite[0] and len(null) >= 2:
        result = null_comparison(np.r_[ratio[0], null])
    else:
        result = {"effect": None, "null": {"mean": float(null.mean()) if len(null) else None,
                                           "std": float(null.std(ddof=1)) if len(null) > 1 else None,
                                           "n": len(null), "values": null}, "z": None, "p_value": None}
        result["undefined"] = ("the ablation changed no negative text, so the ratio has no denominator"
                               if not finite[0] else "fewer than 2 null sets have a defined ratio")
    if dropped:
        result["null_undefined"] = dropped
    return result


def specificity(on_positive: np.ndarray, on_negative: np.ndarray) -> np.ndarray:
    """Effect on concept texts relative to the effect on matched non-concept texts (inf where the latter is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(on_negative > 0, on_positive / np.where(on_negative > 0, on_negative, 1), np.inf)


def cosine_shift(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """1 − cosine between matching rows (the last axis is the embedding)."""
    dot = (reference * other).sum(axis=-1)
    norms = np.linalg.norm(reference, axis=-1) * np.linalg.norm(other, axis=-1)
    return 1.0 - dot / np.maximum(norms, 1e-12)


def separability(embeddings: np.ndarray, labels: np.ndarray, *, seed: int, test_size: float = 0.5) -> float:
    """Held-out AUROC of a logistic-regression probe (scikit-learn) separating positives from negatives in
    output space, on a fixed stratified train/test split (the same split for every run of a set)."""
    labels = np.asarray(labels, dtype=bool)
    train, test = train_test_split(np.arange(len(labels)), test_size=test_size, stratify=labels,
                                   random_state=seed)
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(embeddings[train], labels[train])
    return float(roc_auc_score(labels[test], probe.decision_function(embeddings[test])))


def loglik_gap(values: np.ndarray) -> float:
    """Causal LMs: mean over group pairs of |mean per-item log-likelihood difference| (groups × items)."""
    pairs = combinations(range(values.shape[0]), 2)
    return float(np.mean([abs((values[a] - values[b]).mean()) for a, b in pairs]))


def embedding_gap(embeddings: np.ndarray) -> float:
    """Encoders: mean over group pairs of 1 − mean cosine between an item's versions (groups × items × d)."""
    pairs = combinations(range(embeddings.shape[0]), 2)
    return float(np.mean([cosine_shift(embeddings[a], embeddings[b]).mean() for a, b in pairs]))


def disparity_change_ci(gap: Callable[[np.ndarray], float], clean: np.ndarray, ablated: np.ndarray, *,
                        seed: int, n_resamples: int = 1000) -> tuple[float, float]:
    """Bootstrap 95% CI (over items, paired) of gap(ablated) − gap(clean); items are axis 1 of both."""
    def change(index: np.ndarray) -> float:
        index = index.astype(int)
        return gap(ablated[:, index]) - gap(clean[:, index])

    result = stats.bootstrap((np.arange(clean.shape[1]),), change, n_resamples=n_resamples, vectorized=False,
                             method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)
