"""Large inputs: the vectorised tests run in bounded blocks, and the bootstrap's memory does not grow with
resamples × texts (it was ~170 KB per text at 1,000 resamples, 9 GB for 50,000 texts)."""

from __future__ import annotations

import tracemalloc

import numpy as np

import audit.analysis.selectivity as selectivity
from audit.analysis.selectivity import bootstrap_auroc_ci, concept_selectivity


def test_blocked_selectivity_equals_one_block(monkeypatch):
    rng = np.random.default_rng(0)
    responses = rng.normal(size=(300, 37)).astype(np.float32)
    responses[:150, 5] += 1.0
    labels = np.r_[np.ones(150, bool), np.zeros(150, bool)]
    whole = concept_selectivity(responses, labels)
    monkeypatch.setattr(selectivity, "BLOCK_BYTES", 8 * 4 * 300 * 3)  # blocks of 3 columns
    blocked = concept_selectivity(responses, labels)
    for field in ("auroc", "effect_size", "p_value", "q_value"):
        np.testing.assert_array_equal(getattr(whole, field), getattr(blocked, field))
    rows = np.r_[np.arange(0, 100), np.arange(160, 300)]
    np.testing.assert_array_equal(concept_selectivity(responses, labels[rows], rows=rows).auroc,
                                  concept_selectivity(responses[rows], labels[rows]).auroc)


def test_bootstrap_memory_does_not_scale_with_resamples_times_texts():
    rng = np.random.default_rng(1)
    positive, negative = rng.normal(1.0, 1.0, size=(3000, 20)), rng.normal(size=(3000, 20))
    tracemalloc.start()
    try:
        low, high = bootstrap_auroc_ci(positive, negative, seed=0, n_resamples=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 400 * 2**20, f"{peak / 2**20:.0f} MiB"  # unbatched: 6,000 × 1,000 × 20 float64s, several times
    assert np.all(low < high) and np.all((low > 0.7) & (high < 0.85))
