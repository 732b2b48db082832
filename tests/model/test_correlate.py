"""Ground truth for the checkpoint comparison on tiny models: permuted neurons and one re-drawn neuron."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from audit.analysis.correlation import CorrelationState, layer_pairs, match
from audit.errors import AuditInputError
from audit.model.correlate import resolve_alignment, stream_correlation
from audit.model.loading import load_model
from tests import tiny

REDRAWN = (1, 9)  # (layer, neuron) whose input weights the second copy re-draws


@pytest.fixture(scope="module")
def base(tokenizer):
    """A tiny GPT-2 whose MLP neurons are sparse (larger input weights, negative bias), like trained ones:
    at initialisation they are nearly linear in a 64-dimensional stream, so random mixtures of them correlate
    with each one almost as well as its true partner and no baseline could tell them apart."""
    model = tiny.build_gpt2(tokenizer, n_inner=96, seed=3)
    with torch.no_grad():
        for block in model.transformer.h:
            block.mlp.c_fc.weight.mul_(20.0)
            block.mlp.c_fc.bias.fill_(-1.0)
    return model


@pytest.fixture(scope="module")
def corpus():
    return tiny.sentences(160, seed=11, insert=tiny.CONCEPT + tiny.FEMALE, length=(4, 12))


def _permuted(model, seed: int = 0):
    """The same function with each layer's MLP neurons in a new order; returns the copy and the orders."""
    twin = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    orders = []
    with torch.no_grad():
        for block in twin.transformer.h:
            order = torch.randperm(block.mlp.c_fc.weight.shape[1], generator=generator)
            block.mlp.c_fc.weight.copy_(block.mlp.c_fc.weight[:, order])
            block.mlp.c_fc.bias.copy_(block.mlp.c_fc.bias[order])
            block.mlp.c_proj.weight.copy_(block.mlp.c_proj.weight[order, :])
            orders.append(order.numpy())
    return twin, orders


def _compare(model_a, model_b, texts, precision: str = "float32"):
    state = CorrelationState(layer_pairs(model_a.n_layers, model_b.n_layers, "same"), model_a.neurons_per_layer,
                             model_b.neurons_per_layer, precision=precision)
    stream_correlation(model_a, model_b, texts, state, align="tokens", batch_size=32, stride=2, progress=False)
    return match(state, seed=0)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_permuted_copy_matches_every_neuron_to_its_partner(base, tokenizer, corpus, precision):
    twin, orders = _permuted(base)
    a = load_model(base, tokenizer=tokenizer, device="cpu")
    b = load_model(twin, tokenizer=tokenizer, device="cpu")
    found = _compare(a, b, corpus, precision)
    for layer, order in enumerate(orders):
        partner = np.argsort(order)  # neuron i of A sits at position argsort(order)[i] in B
        np.testing.assert_array_equal(found.a.partner_neuron[layer], partner)
        np.testing.assert_array_equal(found.a.partner_layer[layer], layer)
        np.testing.assert_array_equal(found.b.partner_neuron[layer], order)
    np.testing.assert_allclose(found.a.r, 1.0, atol=1e-5)
    np.testing.assert_allclose(found.b.r, 1.0, atol=1e-5)
    # a tiny random model's neurons are few and correlated, so random mixtures of them come closer than in a
    # trained model; still the true partner beats the rotation baseline by a wide margin for most neurons
    assert np.median(found.a.excess) > 0.5 and found.a.excess.min() > 0.2


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_a_redrawn_neuron_alone_loses_its_match(base, tokenizer, corpus, precision):
    twin = copy.deepcopy(base)
    layer, neuron = REDRAWN
    with torch.no_grad():
        weight = twin.transformer.h[layer].mlp.c_fc.weight
        weight[:, neuron] = torch.randn(weight.shape[0], generator=torch.Generator().manual_seed(99)) * weight.std()
    a = load_model(base, tokenizer=tokenizer, device="cpu")
    b = load_model(twin, tokenizer=tokenizer, device="cpu")
    found = _compare(a, b, corpus, precision)
    flat = layer * a.neurons_per_layer + neuron
    kept = found.a.partner_neuron == np.arange(a.neurons_per_layer)
    assert not kept[layer, neuron] and kept.sum() == kept.size - 1, np.argwhere(~kept)
    assert found.a.r[layer, neuron] < 0.6 and found.b.r[layer, neuron] < 0.6
    np.testing.assert_allclose(np.delete(found.a.r.reshape(-1), flat), 1.0, atol=1e-5)
    assert found.a.excess.reshape(-1).argmin() == flat and found.b.excess.reshape(-1).argmin() == flat
    assert not found.a.persistent()[layer, neuron] and not found.b.persistent()[layer, neuron]
    assert found.diagonal is not None and found.diagonal[layer, neuron] < 0.6
    np.testing.assert_allclose(np.delete(found.diagonal.reshape(-1), flat), 1.0, atol=1e-5)


def test_token_alignment_needs_the_same_tokenization(base, tokenizer, corpus):
    other = tiny.build_tokenizer(tiny.ORDINARY[:40] + tiny.CONCEPT)
    a = load_model(base, tokenizer=tokenizer, device="cpu")
    b = load_model(copy.deepcopy(base), tokenizer=other, device="cpu")
    assert resolve_alignment(a, b, "auto") == "texts"
    state = CorrelationState([(0, 0)], a.neurons_per_layer, b.neurons_per_layer)
    with pytest.raises(AuditInputError, match="--align texts"):
        stream_correlation(a, b, corpus, state, align="tokens", progress=False)
    stream_correlation(a, b, corpus, state, align="texts", progress=False)
    assert state.n == len(corpus)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_shards_of_whole_chunks_add_up_to_the_unsharded_sums(base, tokenizer, corpus, monkeypatch, precision):
    """Buffers flush at chunk ends, so a shard of whole chunks adds exactly the products a single pass adds:
    merged shard states equal the unsharded state up to the float64 order of additions."""
    import audit.model.correlate as correlate
    from audit.model.harvest import batch_plan

    monkeypatch.setattr(correlate, "CHUNK_BATCHES", 2)
    a = load_model(base, tokenizer=tokenizer, device="cpu")
    b = load_model(copy.deepcopy(base), tokenizer=tokenizer, device="cpu")
    pairs = layer_pairs(a.n_layers, b.n_layers, "same")
    whole = stream_correlation(a, b, corpus, CorrelationState(pairs, 96, 96, precision=precision), batch_size=8,
                               stride=3, progress=False)
    plan = batch_plan(corpus, 8, model=a)  # the plan stream_correlation follows
    merged = CorrelationState(pairs, 96, 96, precision=precision)
    for start in range(0, len(plan), 4):  # shards of two chunks each
        group = plan[start:start + 4]
        rows = np.concatenate(group)
        offsets = np.cumsum([0, *map(len, group)])
        relative = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(group))]
        part = stream_correlation(a, b, [corpus[i] for i in rows], CorrelationState(pairs, 96, 96,
                                                                                     precision=precision),
                                  batches=relative, batch_size=8, stride=3, progress=False)
        merged.merge(CorrelationState.from_bytes(part.to_bytes()))
    mine = merged.to_arrays()
    for key, value in whole.to_arrays().items():
        if value.dtype.kind == "f":  # float32 rounding would show at ~1e-7 of the table's scale
            assert np.abs(mine[key] - value).max() <= 1e-12 * np.abs(value).max(), key
        else:
            np.testing.assert_array_equal(mine[key], value, err_msg=key)


ENGINE_BITS = """
import hashlib, sys
import numpy as np
from audit.analysis.correlation import CorrelationState
from audit.model.correlate import BFloat16Products
rng = np.random.default_rng(2)
x = (rng.standard_normal((9000, 8)) + 3).astype(np.float32)
y = (x[:, ::-1] + rng.standard_normal((9000, 8))).astype(np.float32)
state = CorrelationState([(0, 0)], 8, 8, precision="bfloat16")
state.update({0: x}, {0: y}, rng.random(9000) < 0.2, products=BFloat16Products())
arrays = state.to_arrays()
print(hashlib.sha256(b"".join(arrays[key].tobytes() for key in sorted(arrays))).hexdigest())
"""


def test_bfloat16_engine_bits_do_not_depend_on_the_process_threads():
    """A Ray worker (OMP_NUM_THREADS=1) and a two-thread driver add the same bits: oneDNN splits a narrow
    product over many samples across threads by its inner dimension unless each product runs on one."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    digests = {subprocess.run([sys.executable, "-c", ENGINE_BITS], capture_output=True, text=True, check=True, cwd=root,
                              env={**os.environ, "OMP_NUM_THREADS": str(threads)}).stdout.strip()
               for threads in (1, 2)}
    assert len(digests) == 1, digests


def test_bfloat16_engine_rounds_as_the_reference_engine():
    """oneDNN's products agree with NumPy's on the same bfloat16-rounded samples (up to float32 order of
    accumulation and the float32 mean each centres on)."""
    from audit.analysis.correlation import Products
    from audit.model.correlate import BFloat16Products

    rng = np.random.default_rng(2)
    xs = {0: (rng.standard_normal((9000, 8)) + 3).astype(np.float32)}
    ys = {0: (xs[0][:, ::-1] + rng.standard_normal((9000, 8)).astype(np.float32))}
    rows = rng.random(9000) < 0.2
    states = {}
    for name, engine in (("numpy", Products("bfloat16")), ("onednn", BFloat16Products())):
        state = CorrelationState([(0, 0)], 8, 8, precision="bfloat16")
        state.update(xs, ys, rows, products=engine)
        states[name] = state
    np.testing.assert_allclose(states["onednn"].correlation(0, 0), states["numpy"].correlation(0, 0), atol=1e-5)
    np.testing.assert_allclose(states["onednn"].rotated_correlation(0, 0, np.eye(8)),
                               states["numpy"].rotated_correlation(0, 0, np.eye(8)), atol=1e-5)
