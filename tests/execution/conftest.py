"""Fixtures of the execution tests: a pair of tiny models for comparisons."""

from __future__ import annotations

import pytest

from tests import tiny


@pytest.fixture(scope="module")
def pair(tmp_path_factory, tokenizer):
    """Two tiny GPT-2s that share a tokenizer (A planted, B a re-drawn copy) and a corpus of 120 lines."""
    import copy

    import torch

    from tests.conftest import PLANTED_NEURON

    model = tiny.build_planted_gpt2(tokenizer, [tiny.Plant(PLANTED_NEURON, (tuple(tiny.CONCEPT),))])
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.transformer.h[1].mlp.c_fc.weight.mul_(1.5)
    root = tmp_path_factory.mktemp("pair")
    corpus = root / "corpus.txt"
    corpus.write_text("\n".join(tiny.sentences(120, seed=41, insert=tiny.CONCEPT, length=(3, 14))))
    return tiny.save(model, tokenizer, root / "a"), tiny.save(other, tokenizer, root / "b"), corpus
