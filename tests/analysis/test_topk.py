"""Streaming top-k contexts: the state keeps the k best texts per neuron, merges losslessly, serialises."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audit.analysis.topk import TopContexts


def _batches(n_texts: int, n_neurons: int, seed: int, size: int):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n_texts, n_neurons)).astype(np.float32)
    values[5, 0] = values[9, 0] = 3.5  # a tie, broken by key
    positions = rng.integers(0, 12, size=(n_texts, n_neurons))
    keys = [f"doc:{i:04d}" for i in range(n_texts)]
    texts = [f"text {i}" for i in range(n_texts)]
    return [(keys[i:i + size], texts[i:i + size], values[i:i + size], positions[i:i + size])
            for i in range(0, n_texts, size)], values


def test_keeps_the_k_strongest_texts_per_neuron():
    batches, values = _batches(60, 3, seed=0, size=7)
    state = TopContexts(neurons=[(0, 1), (0, 2), (1, 0)], k=5)
    for batch in batches:
        state.update(*batch)
    for column in range(3):
        expected = np.sort(values[:, column])[::-1][:5]
        assert np.array_equal(state.values[column], expected)
        assert [c["text"] for c in state.contexts(column)][0] == f"text {int(np.argmax(values[:, column]))}"
    assert state.seen == 60 and len(state.texts) <= 15  # only referenced texts are kept


def test_two_shards_merged_equal_one_pass_and_survive_json():
    batches, _ = _batches(80, 4, seed=1, size=9)
    whole = TopContexts(neurons=[(0, n) for n in range(4)], k=6)
    for batch in batches:
        whole.update(*batch)
    first, second = (TopContexts(neurons=[(0, n) for n in range(4)], k=6) for _ in range(2))
    for i, batch in enumerate(batches):
        (first if i % 2 else second).update(*batch)
    shipped = TopContexts.from_dict(json.loads(json.dumps(second.to_dict())))
    assert shipped == second
    assert first.merge(shipped) == whole


def test_fewer_texts_than_k_leave_empty_slots_that_survive_serialisation():
    state = TopContexts(neurons=[(2, 3)], k=4)
    state.update(["a", "b"], ["x", "y"], np.array([[1.0], [2.0]]), np.array([[0], [1]]))
    assert [c["key"] for c in state.contexts(0)] == ["b", "a"]
    assert TopContexts.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_bad_shapes_and_mismatched_merges_are_refused():
    state = TopContexts(neurons=[(0, 0)], k=2)
    with pytest.raises(ValueError, match="shaped"):
        state.update(["a"], ["x"], np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="same neurons"):
        state.merge(TopContexts(neurons=[(0, 1)], k=2))
    with pytest.raises(ValueError, match="'k'"):
        TopContexts(neurons=[(0, 0)], k=0)
