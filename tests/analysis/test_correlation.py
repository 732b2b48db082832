"""The mergeable correlation state: exact Pearson r, shard merging, lossless round trips, the rotation baseline."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis.correlation import CorrelationState, layer_pairs, match, plan_blocks, random_rotation
from audit.errors import AuditInputError

PAIRS = [(0, 0), (0, 1), (1, 1)]


def _batch(rng: np.random.Generator, n: int, width: int = 6, offset: float = 5.0) -> dict[int, np.ndarray]:
    base = rng.standard_normal((n, width))
    return {0: (base + offset).astype(np.float32), 1: (base[:, ::-1] * 2 + rng.standard_normal((n, width))
                                                       * 0.3 - offset).astype(np.float32)}


def _state(batches, width_a=6, width_b=6) -> CorrelationState:
    state = CorrelationState(PAIRS, width_a, width_b)
    for xs, ys, rows in batches:
        state.update(xs, ys, rows)
    return state


@pytest.fixture
def batches():
    rng = np.random.default_rng(0)
    found = []
    for size in (40, 7, 33, 20):
        xs, ys = _batch(rng, size), _batch(rng, size)
        ys = {layer: ys[layer] + 0.5 * xs[0][:, ::-1] for layer in ys}
        found.append((xs, ys, rng.random(size) < 0.5))
    return found


def test_pearson_matches_numpy_on_every_pair(batches):
    state = _state(batches)
    x = {layer: np.concatenate([b[0][layer] for b in batches]).astype(np.float64) for layer in (0, 1)}
    y = {layer: np.concatenate([b[1][layer] for b in batches]).astype(np.float64) for layer in (0, 1)}
    for a, b in PAIRS:
        expected = np.corrcoef(x[a].T, y[b].T)[:6, 6:]
        np.testing.assert_allclose(state.correlation(a, b), expected, atol=1e-6)
    np.testing.assert_allclose(state.diagonal(1), np.diagonal(np.corrcoef(x[1].T, y[1].T)[:6, 6:]), atol=1e-6)
    assert state.n == sum(len(b[2]) for b in batches)


def test_two_shards_merge_to_the_whole_corpus_state(batches):
    whole = _state(batches)
    left, right = _state(batches[:1] + batches[3:]), _state(batches[1:3])
    merged = CorrelationState(PAIRS, 6, 6).merge(right).merge(left)  # order does not matter
    for key, value in whole.to_arrays().items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(merged.to_arrays()[key], value, rtol=1e-12, atol=1e-9, err_msg=key)
        else:
            np.testing.assert_array_equal(merged.to_arrays()[key], value)
    for a, b in PAIRS:
        np.testing.assert_allclose(merged.correlation(a, b), whole.correlation(a, b), atol=1e-12)
    with pytest.raises(ValueError, match="different layer pairs"):
        whole.merge(CorrelationState([(0, 0)], 6, 6))


def test_round_trip_through_arrays_and_bytes_is_lossless(batches):
    state = _state(batches)
    again = CorrelationState.from_bytes(state.to_bytes())
    for key, value in state.to_arrays().items():
        np.testing.assert_array_equal(again.to_arrays()[key], value)
    assert again.pairs == state.pairs and again.n == state.n
    with pytest.raises(AuditInputError, match="format"):
        CorrelationState.from_arrays({"format": np.array("something else")})


def test_rotation_baseline_equals_correlating_rotated_activations(batches):
    rotation = random_rotation(6, seed=3)
    x = np.concatenate([b[0][0] for b in batches]).astype(np.float64)
    y = np.concatenate([b[1][1] for b in batches]).astype(np.float64)
    zx, zy = (x - x.mean(0)) / x.std(0), (y - y.mean(0)) / y.std(0)  # the baseline mixes standardised neurons
    everything = _state([(xs, ys, None) for xs, ys, _ in batches])  # baseline on every sample: exact
    expected = np.corrcoef(x.T, (zy @ rotation.T).T)[:6, 6:]
    np.testing.assert_allclose(everything.rotated_correlation(0, 1, rotation), expected, atol=1e-6)
    expected_a = np.corrcoef((zx @ rotation.T).T, y.T)[:6, 6:]
    np.testing.assert_allclose(everything.rotated_correlation(0, 1, rotation, rotate="a"), expected_a, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rotation, axis=1), 1.0)
    # on a subsample: covariances from all samples, only the mixtures' variances from the subsample
    rows = np.concatenate([b[2] for b in batches])
    mixed = zy @ rotation.T
    cov = ((x - x.mean(0)).T @ (mixed - mixed.mean(0))) / len(x)
    expected_sub = cov / np.outer(x.std(0), mixed[rows].std(0))
    np.testing.assert_allclose(_state(batches).rotated_correlation(0, 1, rotation), expected_sub, atol=1e-6)


def test_identical_neurons_match_themselves_with_high_excess():
    rng = np.random.default_rng(1)
    width = 128
    state = CorrelationState([(0, 0)], width, width)
    for _ in range(5):
        x = np.maximum(rng.standard_normal((200, width)), 0).astype(np.float32)  # sparse, like MLP neurons
        state.update({0: x}, {0: x[:, ::-1].copy()})
    found = match(state, seed=0)
    np.testing.assert_array_equal(found.a.partner_neuron[0], np.arange(width)[::-1])
    np.testing.assert_allclose(found.a.r[0], 1.0, atol=1e-6)
    assert (found.a.excess > 0.5).all() and (found.b.excess > 0.5).all()
    assert (found.a.baseline < 0.9).all()


def test_blocks_give_the_same_matching_as_one_state(batches):
    whole = match(_state(batches), seed=5)
    parts = []
    for block in plan_blocks(PAIRS, 6, 6, CorrelationState.nbytes(PAIRS[:1], 6, 6) + 8 * 36 * 2):
        part = CorrelationState(block, 6, 6)
        for xs, ys, rows in batches:
            part.update(xs, ys, rows)
        parts.append(part)
    assert len(parts) > 1
    blocked = match(parts, seed=5)
    for side in ("a", "b"):
        for name in ("r", "partner_layer", "partner_neuron", "baseline"):
            np.testing.assert_allclose(getattr(getattr(blocked, side), name), getattr(getattr(whole, side), name))


def test_layer_pairs_cover_both_models():
    assert layer_pairs(3, 3, "same") == [(0, 0), (1, 1), (2, 2)]
    depth = layer_pairs(2, 4, "depth")
    assert {a for a, _ in depth} == {0, 1} and {b for _, b in depth} == {0, 1, 2, 3}
    assert len(layer_pairs(2, 3, "all")) == 6
    with pytest.raises(AuditInputError, match="--layers same"):
        layer_pairs(2, 3, "same")


def test_sums_do_not_depend_on_the_number_of_blas_threads(monkeypatch):
    """A one-thread Ray worker and a two-thread driver must add the same bits: products run one per BLAS
    thread, however many threads the process has."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(5)
    xs = {0: rng.standard_normal((1000, 384)).astype(np.float32)}
    ys = {0: rng.standard_normal((1000, 384)).astype(np.float32)}
    with threadpool_limits(limits=1, user_api="blas"):
        one = xs[0].T @ ys[0]
    with threadpool_limits(limits=2, user_api="blas"):
        two = xs[0].T @ ys[0]
    if np.array_equal(one, two):
        pytest.skip("this machine's BLAS gives the same bits on 1 and 2 threads; nothing to guard")
    states = []
    for threads in (1, 2):  # the process's BLAS on one core (a Ray worker) or on both (the driver)
        monkeypatch.setenv("OMP_NUM_THREADS", str(threads))
        state = CorrelationState([(0, 0)], 384, 384)
        with threadpool_limits(limits=threads, user_api="blas"):
            state.update(xs, ys)
        states.append(state.to_arrays())
    for key, value in states[0].items():
        np.testing.assert_array_equal(states[1][key], value, err_msg=key)


def test_bfloat16_rounding_is_to_nearest_with_ties_to_even():
    from audit.analysis.correlation import round_bfloat16

    ties = np.array([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8 + 2 ** -20), 0.0], np.float32)
    round_bfloat16(ties)
    np.testing.assert_array_equal(ties, np.array([1.0, 1 + 2 ** -6, -(1 + 2 ** -7), 0.0], np.float32))
    values = (np.random.default_rng(3).standard_normal(10_000) * 10.0 ** np.arange(-3, 7).repeat(1000)).astype(np.float32)
    step = 2.0 ** (np.floor(np.log2(np.abs(values.astype(np.float64)))) - 7)  # 8 significant bits
    expected = np.round(values / step) * step  # np.round rounds halves to even
    round_bfloat16(values)
    np.testing.assert_array_equal(values, expected.astype(np.float32))
    with pytest.raises(ValueError, match="float32"):
        round_bfloat16(np.ones(3))


def test_bfloat16_products_keep_exact_copies_at_r_1_and_stay_near_float32(batches):
    rng = np.random.default_rng(8)
    width = 64
    exact = CorrelationState([(0, 0)], width, width, precision="bfloat16")
    for _ in range(4):
        x = (np.maximum(rng.standard_normal((300, width)), 0) * 3 + 0.7).astype(np.float32)
        exact.update({0: x}, {0: x[:, ::-1].copy()}, rng.random(300) < 0.3)
    found = match(exact, seed=0)
    np.testing.assert_array_equal(found.a.partner_neuron[0], np.arange(width)[::-1])
    np.testing.assert_allclose(found.a.r[0], 1.0, atol=1e-6)
    rounded = CorrelationState(PAIRS, 6, 6, precision="bfloat16")
    for xs, ys, rows in batches:
        rounded.update(xs, ys, rows)
    full = _state(batches)
    for a, b in PAIRS:
        gap = np.abs(rounded.correlation(a, b) - full.correlation(a, b)).max()
        assert 0 < gap < 2e-3, (a, b, gap)  # 8 significant bits: errors of ~2^-9 of a value, averaged over samples


def test_states_of_other_precisions_do_not_mix(batches):
    rounded = CorrelationState(PAIRS, 6, 6, precision="bfloat16")
    rounded.update(*batches[0])
    again = CorrelationState.from_bytes(rounded.to_bytes())
    assert again.precision == "bfloat16"
    with pytest.raises(ValueError, match="bfloat16 state into a float32"):
        _state(batches).merge(again)
    with pytest.raises(AuditInputError, match="--precision"):
        CorrelationState(PAIRS, 6, 6, precision="int8")
