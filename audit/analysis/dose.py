"""Dose–response of an ablation: which numbers of flagged neurons to ablate, and what a dose costs off target.

Doses follow a 1–3–10 ladder (1, 3, 10, 30, 100, 300, …) up to the number of significant neurons; AurA
dampening of every neuron with AUROC > 0.5 is the last dose. For causal LMs each dose's cost on general
text (perplexity change, mean KL) and its specificity (target effect / general-text KL) carry bootstrap CIs.
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def dose_ladder(n_significant: int, *, limit: int) -> list[int]:
    """1, 3, 10, 30, 100, … not above ``n_significant`` nor ``limit``."""
    doses, step = [], 0
    while True:
        k = (1, 3)[step % 2] * 10 ** (step // 2)
        if k > min(n_significant, limit):
            return doses
        doses.append(k)
        step += 1


def _bootstrap_ci(samples: tuple[np.ndarray, ...], statistic, *, seed: int, n_resamples: int) -> list[float] | None:
    """Percentile 95 % CI, each sample resampled independently (None when too few values to resample)."""
    if any(len(s) < 2 for s in samples):
        return None
    result = stats.bootstrap(samples, statistic, n_resamples=n_resamples, method="percentile", paired=False,
                             vectorized=True, rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return [float(low), float(high)]


def perplexity(loglik: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(−mean per-text mean log-likelihood per token), the collateral-cost convention."""
    return np.exp(-np.mean(loglik, axis=axis))


def off_target_cost(clean_loglik: np.ndarray, ablated_loglik: np.ndarray, kl: np.ndarray, *, seed: int,
                    n_resamples: int) -> dict:
    """General-text cost of one dose: perplexity change (ablated − clean, texts resampled in pairs) and mean
    KL(clean ‖ ablated) per token, each with a bootstrap 95 % CI over the reference texts."""
    clean_loglik, ablated_loglik, kl = (np.asarray(a, dtype=np.float64) for a in (clean_loglik, ablated_loglik, kl))

    def change(index: np.ndarray, axis: int = -1) -> np.ndarray:
        index = index.astype(int)
        return perplexity(ablated_loglik[index], axis=axis) - perplexity(clean_loglik[index], axis=axis)

    rows = np.arange(len(kl), dtype=float)
    return {"perplexity_change": float(perplexity(ablated_loglik) - perplexity(clean_loglik)),
            "perplexity_change_ci": _bootstrap_ci((rows,), change, seed=seed, n_resamples=n_resamples),
            "kl": float(kl.mean()),
            "kl_ci": _bootstrap_ci((kl,), np.mean, seed=seed + 1, n_resamples=n_resamples),
            "n_texts": int(len(kl))}


def specificity_ratio(target: np.ndarray, off_target: np.ndarray, *, seed: int, n_resamples: int) -> dict:
    """Mean target effect over mean off-target cost (e.g. KL on concept texts / KL on general text), with a
    bootstrap 95 % CI resampling both text sets independently; None where the cost is zero."""
    target = np.asarray(target, dtype=np.float64)
    off_target = np.maximum(np.asarray(off_target, dtype=np.float64), 0.0)  # a KL below 0 is rounding error
    if off_target.mean() <= 0:
        return {"value": None, "ci": None, "undefined": "the dose costs nothing on general text"}

    def ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.mean(a, axis=axis) / np.mean(b, axis=axis)

    return {"value": float(target.mean() / off_target.mean()),
            "ci": _bootstrap_ci((target, off_target), ratio, seed=seed, n_resamples=n_resamples)}
