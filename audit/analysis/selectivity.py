"""Concept selectivity of every neuron at once: AUROC, effect size, Mann–Whitney p, BH q.

Pure functions over arrays shaped (texts, neurons): no model, no report code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import expected
from .resident import release

ALPHA = 0.05
BLOCK_BYTES = 64 << 20  # working memory of one block of the vectorised tests (arrays are tested in blocks)


@dataclass(frozen=True)
class Selectivity:
    """Per-neuron statistics, each an array over the flattened (layer, neuron) axis."""

    auroc: np.ndarray
    effect_size: np.ndarray  # Cohen's d, positive minus negative, pooled SD
    p_value: np.ndarray  # two-sided Mann–Whitney U, asymptotic with tie correction
    q_value: np.ndarray  # Benjamini–Hochberg over all neurons of all layers
    n_positive: int
    n_negative: int

    @property
    def strength(self) -> np.ndarray:
        """Distance from chance in either direction: |AUROC − 0.5|."""
        return np.abs(self.auroc - 0.5)

    def ranking(self) -> np.ndarray:
        """Neuron indices, most selective first (either direction); ties broken by |effect size|, then index."""
        return np.lexsort((np.arange(self.auroc.size), -np.abs(self.effect_size), -self.strength))

    def significant(self, alpha: float = ALPHA) -> np.ndarray:
        return self.q_value < alpha


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted q-values (scipy), with missing p-values treated as 1."""
    p = np.nan_to_num(np.asarray(p_values, dtype=float), nan=1.0)
    return stats.false_discovery_control(p, method="bh")


def cohens_d(positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """Standardised mean difference per column; 0 where both groups are constant."""
    n1, n2 = len(positive), len(negative)
    pooled = ((n1 - 1) * positive.var(axis=0, ddof=1) + (n2 - 1) * negative.var(axis=0, ddof=1)) / (n1 + n2 - 2)
    diff = positive.mean(axis=0) - negative.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pooled > 0, diff / np.sqrt(pooled), 0.0)


def auroc(positive: np.ndarray, negative: np.ndarray, axis: int = 0) -> np.ndarray:
    """P(positive > negative) + ½·P(tie) along ``axis``: the Mann–Whitney U over n₁n₂."""
    u = stats.mannwhitneyu(positive, negative, axis=axis, method="asymptotic").statistic
    return u / (positive.shape[axis] * negative.shape[axis])


def concept_selectivity(responses: np.ndarray, labels: np.ndarray, *, dtype: type = np.float64,
                        rows: np.ndarray | None = None) -> Selectivity:
    """Selectivity of each column of ``responses`` (texts × neurons) for ``labels`` (True = positive).

    ``rows`` restricts the test to those texts (``labels`` then has one entry per row). Columns are tested in
    blocks of bounded size, so a large (or memory-mapped) response matrix is never copied whole; the result
    does not depend on the blocking. ``dtype=np.float32`` runs the test ~3× faster but p-values below ~1e-38
    underflow to 0: fine for a ranking or a q < alpha cut, not for reporting p-values.
    """
    labels = np.asarray(labels, dtype=bool)
    n_texts = responses.shape[0] if rows is None else len(rows)
    if responses.ndim != 2 or labels.shape != (n_texts,):
        raise expected("labels", f"a bool vector of length {n_texts}", labels.shape)
    n_positive, n_negative = int(labels.sum()), int((~labels).sum())
    if n_positive < 2 or n_negative < 2:
        raise expected("labels", "at least 2 positive and 2 negative texts", (n_positive, n_negative))
    width = max(1, BLOCK_BYTES // (8 * 4 * n_texts))  # a few float64 copies of one block at a time
    u, p_value, effect = (np.empty(responses.shape[1]) for _ in range(3))
    for start in range(0, responses.shape[1], width):
        block = np.asarray(responses[:, start:start + width] if rows is None else responses[rows, start:start + width],
                           dtype=dtype)
        positive, negative = block[labels], block[~labels]
        with np.errstate(divide="ignore", invalid="ignore"):
            test = stats.mannwhitneyu(positive, negative, axis=0, method="asymptotic")
        u[start:start + width], p_value[start:start + width] = test.statistic, np.nan_to_num(test.pvalue, nan=1.0)
        effect[start:start + width] = cohens_d(positive.astype(np.float64), negative.astype(np.float64))
        release(responses)  # a memory-mapped matrix would otherwise end fully resident, block after block
    return Selectivity(auroc=u / (n_positive * n_negative), effect_size=effect, p_value=p_value,
                       q_value=benjamini_hochberg(p_value), n_positive=n_positive, n_negative=n_negative)


def shuffled_control(responses: np.ndarray, labels: np.ndarray, *, seed: int) -> Selectivity:
    """The same test with labels permuted (seeded): a calibration check; almost no q should pass."""
    rng = np.random.default_rng(seed)
    return concept_selectivity(responses, rng.permutation(np.asarray(labels, dtype=bool)))


def bootstrap_auroc_ci(positive: np.ndarray, negative: np.ndarray, *, seed: int, n_resamples: int = 1000,
                       confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap CI of AUROC per column, resampling positives and negatives separately."""
    if n_resamples < 100:
        raise expected("The 'n_resamples' parameter", "an int >= 100", n_resamples)

    def statistic(pos: np.ndarray, neg: np.ndarray, axis: int) -> np.ndarray:
        return auroc(pos, neg, axis=axis)

    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    # scipy resamples all at once unless batched: resamples × texts × columns float64s, several times over
    # (9 GB for 50,000 texts); batches keep that to about BLOCK_BYTES whatever the number of texts
    per_resample = 8 * 4 * (len(positive) + len(negative)) * max(positive.shape[1] if positive.ndim > 1 else 1, 1)
    result = stats.bootstrap((positive, negative), statistic, n_resamples=n_resamples, confidence_level=confidence,
                             method="percentile", vectorized=True, axis=0, rng=np.random.default_rng(seed),
                             batch=max(1, min(n_resamples, BLOCK_BYTES // per_resample)))
    return result.confidence_interval.low, result.confidence_interval.high
