"""Generation check statistics: prompts from matched pairs, and the shift against random-neuron nulls."""

from __future__ import annotations

import numpy as np

from audit.analysis.generation import continuation_pairs, continuation_shift


def test_pairs_split_at_their_shared_opening_and_skip_the_rest():
    positive = ["Your code is garbage and so are you.", "What a clown.", "Go away now", "Same text"]
    negative = ["Your code is clean and so are your docs.", "Thanks a lot.", "Go away", "Same text"]
    found = continuation_pairs(positive, negative, [0, 1, 2, 3])
    assert len(found) == 1  # no shared opening; one text a prefix of the other; identical
    (pair,) = found
    assert (pair.index, pair.prompt, pair.positive, pair.negative) == (
        0, "Your code is", "garbage and so are you.", "clean and so are your docs.")
    assert continuation_pairs(positive, negative, [0], min_prompt_words=4) == []


def test_shift_against_null_sets():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(-20, 2, 30), rng.normal(-18, 2, 30)
    nulls = 20
    ablated_pos = pos[None] + rng.normal(0, 0.05, (nulls + 1, 30))
    ablated_neg = neg[None] + rng.normal(0, 0.05, (nulls + 1, 30))
    ablated_pos[0] -= 1.5  # the flagged set makes the toxic continuation 1.5 nats less likely
    found = continuation_shift(pos, neg, ablated_pos, ablated_neg, seed=0, n_resamples=200)
    assert abs(found["gap_clean"] - (pos - neg).mean()) < 1e-12
    assert abs(found["shift"] - (-1.5)) < 0.1 and found["ci95"][0] < found["shift"] < found["ci95"][1] < 0
    assert found["p_value"] == 1 / (nulls + 1) and found["z"] < -10
    assert abs(found["logprob_positive_ablated"] - ablated_pos[0].mean()) < 1e-12
    found = continuation_shift(pos, neg, ablated_pos[[1, *range(1, nulls + 1)]], ablated_neg[[1, *range(1, nulls + 1)]],
                               seed=0, n_resamples=200)
    assert found["p_value"] > 0.5  # a random set is not special
