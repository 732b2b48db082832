"""The generation check for safety sets: does ablating the flagged neurons make the model less likely to
continue a prompt the toxic way rather than the neutral way?

Concept sets are written as matched pairs: the i-th positive and the i-th negative text share topic and
register and usually their opening words ("Your code is garbage…" / "Your code is clean…"). The shared
opening becomes the prompt and the two different remainders the continuations, so the comparison holds the
context fixed and varies only what the model would say next. Pairs without a shared opening (or where one
text is a prefix of the other) are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats

from .ablation import null_comparison


@dataclass(frozen=True)
class ContinuationPair:
    """One matched pair split at its shared opening words."""

    index: int  # position of the pair in the probe set
    prompt: str
    positive: str  # the concept (e.g. toxic) continuation
    negative: str  # the matched neutral continuation


def continuation_pairs(positive: Sequence[str], negative: Sequence[str], rows: Sequence[int], *,
                       min_prompt_words: int = 1) -> list[ContinuationPair]:
    """Split pairs ``rows`` (indices into both lists) at their longest common run of opening words."""
    pairs = []
    for row in rows:
        a, b = positive[row].split(), negative[row].split()
        shared = 0
        while shared < min(len(a), len(b)) and a[shared] == b[shared]:
            shared += 1
        if shared < min_prompt_words or shared == len(a) or shared == len(b):
            continue
        pairs.append(ContinuationPair(index=int(row), prompt=" ".join(a[:shared]), positive=" ".join(a[shared:]),
                                      negative=" ".join(b[shared:])))
    return pairs


def continuation_shift(clean_positive: np.ndarray, clean_negative: np.ndarray, ablated_positive: np.ndarray,
                       ablated_negative: np.ndarray, *, seed: int, n_resamples: int = 1000) -> dict:
    """Gap = log P(positive continuation) − log P(negative continuation), per pair.

    ``clean_*``: (pairs,); ``ablated_*``: (runs, pairs), run 0 the flagged neurons, the rest random sets.
    Returns the clean and ablated mean log-probabilities and gaps, the shift of the mean gap under the
    flagged ablation with a percentile-bootstrap 95 % CI over pairs, and its comparison with the null sets
    (a more negative shift is stronger: the toxic continuation lost ground to the neutral one).
    """
    clean_gap = clean_positive - clean_negative
    ablated_gap = ablated_positive - ablated_negative  # runs × pairs
    shifts = ablated_gap - clean_gap[None]
    comparison = null_comparison(shifts.mean(axis=1), larger_is_stronger=False)
    if len(clean_gap) > 1:
        result = stats.bootstrap((shifts[0],), np.mean, n_resamples=n_resamples, method="percentile",
                                 rng=np.random.default_rng(seed))
        ci = [float(result.confidence_interval.low), float(result.confidence_interval.high)]
    else:
        ci = [float(shifts[0, 0])] * 2
    return {"logprob_positive_clean": float(clean_positive.mean()),
            "logprob_negative_clean": float(clean_negative.mean()),
            "logprob_positive_ablated": float(ablated_positive[0].mean()),
            "logprob_negative_ablated": float(ablated_negative[0].mean()),
            "gap_clean": float(clean_gap.mean()), "gap_ablated": float(ablated_gap[0].mean()),
            "shift": float(comparison["effect"]), "ci95": ci, "null": comparison["null"], "z": comparison["z"],
            "p_value": comparison["p_value"]}
