"""Top contexts streamed through a planted model, from lists and from corpus files of both formats."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audit.errors import AuditInputError
from audit.model.contexts import keyed, state_bytes, top_contexts
from audit.model.harvest import harvest
from audit.probes.corpus import check_corpus, iter_corpus
from tests import tiny
from tests.conftest import PLANTED_NEURON


def test_planted_neuron_tops_on_its_concept_word_and_matches_harvest(planted_model):
    texts = tiny.sentences(30, seed=3) + tiny.sentences(6, seed=4, insert=tiny.CONCEPT)
    neurons = [(0, PLANTED_NEURON), (1, 5)]
    state = top_contexts(planted_model, keyed(texts, "t"), neurons, k=6, batch_size=7)
    acts = harvest(planted_model, texts, progress=False)
    for column, (layer, neuron) in enumerate(neurons):
        expected = np.sort(acts.max[:, layer, neuron])[::-1][:6]
        assert np.allclose(state.values[column], expected, atol=1e-5)
    for context in state.contexts(0):
        assert context["text"].split()[context["position"]] in tiny.CONCEPT


def test_sharded_streams_merge_to_one_pass(planted_model):
    texts = tiny.sentences(40, seed=5, insert=tiny.CONCEPT + tiny.SECOND)
    neurons = [(0, PLANTED_NEURON), (0, 42)]
    whole = top_contexts(planted_model, keyed(texts, "c"), neurons, k=5, batch_size=8)
    pairs = list(keyed(texts, "c"))
    left = top_contexts(planted_model, pairs[::2], neurons, k=5, batch_size=8)
    right = top_contexts(planted_model, pairs[1::2], neurons, k=5, batch_size=3)
    merged = left.merge(right)
    assert merged.keys.tolist() == whole.keys.tolist() and np.allclose(merged.values, whole.values, atol=1e-6)
    assert state_bytes(whole) < 10_000


def test_corpus_files_plain_and_jsonl(tmp_path):
    plain = tmp_path / "c.txt"
    plain.write_text("first line\n\n  second line  \n", encoding="utf-8")
    assert list(iter_corpus(plain)) == [("c.txt:1", "first line"), ("c.txt:3", "second line")]
    lines = tmp_path / "c.jsonl"
    lines.write_text(json.dumps({"text": "one", "id": 3}) + "\n" + json.dumps("two") + "\n", encoding="utf-8")
    assert [text for _, text in iter_corpus(lines)] == ["one", "two"]


@pytest.mark.parametrize("content, message", [
    ('{"body": "x"}\n', "line 1: expected an object with a string 'text' field"),
    ("{not json\n", "line 1 is not JSON"),
    ("\n\n", "holds no text"),
])
def test_bad_corpus_files_name_the_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AuditInputError, match=message):
        check_corpus(path)


def test_missing_corpus_is_an_input_error(tmp_path):
    with pytest.raises(AuditInputError, match="--corpus: .*no such (corpus )?file"):
        check_corpus(tmp_path / "absent.txt")
