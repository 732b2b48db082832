"""Explanations on planted neurons: method A, N2G graphs and the verdict rebuilt on them."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis.polysemanticity import MONOSEMANTIC, POLYSEMANTIC
from audit.config import RunConfig
from audit.errors import AuditInputError
from audit.model.similarity import embedding_vectors, fasttext_vectors
from audit.probes.probeset import load_probesets
from tests import tiny
from tests.conftest import PLANTED_NEURON, POLY_NEURON, audited


@pytest.fixture(scope="module")
def explained(planted_model, concept_yaml, tmp_path_factory):
    """One audit of the planted set; the reference corpus holds the concept in 2 % of lines and the
    poly neuron's second word group in 30 lines."""
    folder = tmp_path_factory.mktemp("explain")
    reference = folder / "reference.txt"
    lines = (tiny.sentences(360, seed=21) + tiny.sentences(8, seed=22, insert=tiny.CONCEPT)
             + tiny.sentences(30, seed=23, insert=tiny.SECOND))
    reference.write_text("\n".join(lines), encoding="utf-8")
    config = RunConfig(top_k=10, progress=False, bootstrap_resamples=200, ablation=False, reference=str(reference))
    result = audited(planted_model, load_probesets([concept_yaml]), config)
    return {(n["layer"], n["neuron"]): n for n in result["probesets"][0]["neurons"]}


def test_single_concept_neuron_stays_monosemantic_though_general_text_mentions_it(explained):
    evidence = explained[(0, PLANTED_NEURON)]["polysemanticity"]
    assert evidence["verdict"] == MONOSEMANTIC, evidence["reasons"]
    assert evidence["previous_verdict"] != MONOSEMANTIC  # the old rule counted the concept lines as unrelated
    assert evidence["unexplained_contexts"] == []


def test_two_word_group_neuron_is_polysemantic_and_the_reasons_name_the_contexts(explained):
    evidence = explained[(0, POLY_NEURON)]["polysemanticity"]
    assert evidence["verdict"] == POLYSEMANTIC and explained[(0, POLY_NEURON)]["polysemantic"]
    assert evidence["unexplained_contexts"]
    assert all(c["token"] in tiny.SECOND for c in evidence["unexplained_contexts"])
    assert any(word in evidence["reasons"][0] for word in tiny.SECOND)


def test_explanation_of_the_planted_neuron(explained):
    explanation = explained[(0, PLANTED_NEURON)]["explanation"]
    tokens = [row["token"] for row in explanation["top_tokens"]]
    assert set(tokens) <= set(tiny.CONCEPT) and len(tokens) >= 3
    assert explanation["top_tokens"][0]["score"] == 1.0
    assert all(row["score"] >= 0.3 for row in explanation["top_tokens"])
    assert explanation["coherence"]["coherent"] and explanation["coherence"]["value"] > 0.5
    summary = explanation["substitution_summary"]
    assert summary["n"] >= 5 and summary["firing"] >= summary["n"] // 2  # neighbours are other concept words
    assert "fires on a coherent word group" in explanation["description"]
    fidelity = explanation["fidelity"]
    assert fidelity["graph"]["f1"] >= 0.9 and fidelity["graph"]["n_firing"] > 0
    assert fidelity["graph"]["f1"] >= fidelity["ngram"]["f1"]
    assert any(pattern["tokens"][0] in tiny.CONCEPT for pattern in explanation["graph"])


def test_fasttext_vectors_bin_and_vec_trained_in_process(tmp_path):
    fasttext = pytest.importorskip("fasttext")
    corpus = tmp_path / "corpus.txt"
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(group, 6)) for group in (tiny.CONCEPT, tiny.SECOND, tiny.ORDINARY) for _ in range(200)]
    corpus.write_text("\n".join(lines), encoding="utf-8")
    model = fasttext.train_unsupervised(str(corpus), model="skipgram", dim=16, epoch=50, lr=0.1, minCount=1, thread=1,
                                        minn=0, maxn=0, ws=3, verbose=0)
    model.save_model(str(tmp_path / "tiny.bin"))
    words = model.get_words()
    vec = tmp_path / "tiny.vec"
    vec.write_text(f"{len(words)} 16\n" + "\n".join(f"{w} " + " ".join(f"{x:.6f}" for x in model.get_word_vector(w))
                                                     for w in words), encoding="utf-8")
    for path in (tmp_path / "tiny.bin", vec):
        vectors = fasttext_vectors(path)
        found = [word for word, _ in vectors.neighbours("poison", 3)]
        assert set(found) <= set(tiny.CONCEPT), (path.suffix, found)
        assert "poison" not in found


@pytest.mark.parametrize("name, content, message", [
    ("v.txt", "x", "expected a fastText .bin or .vec"),
    ("v.vec", "2 3\nword 1 2\n", "line 2 has 2 values, expected"),
    ("v.bin", "not a model", "not a fastText model"),
])
def test_bad_word_vectors_are_input_errors(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AuditInputError, match=message):
        fasttext_vectors(path)


def test_neighbours_from_a_partial_sort_equal_the_full_ranking_ties_included():
    """The nearest words come from a partial selection (a 49k-word vocabulary per query was a stable full sort):
    same words, same order, ties in list order, as ranking every word."""
    from audit.model.similarity import WordVectors

    rng = np.random.default_rng(2)
    base = rng.normal(size=(30, 8))
    matrix = np.repeat(base, 3, axis=0)[:80]  # every vector three times: ties everywhere
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    words = [f"w{i}" for i in range(len(matrix))]
    vectors = WordVectors(words, matrix.astype(np.float32), "test")
    for word in ("w0", "w7", "w41"):
        scores = vectors.matrix @ vectors.vector(word)
        ranked = [words[i] for i in np.argsort(-scores, kind="stable") if words[i] != word][:5]
        assert [w for w, _ in vectors.neighbours(word, 5)] == ranked
        assert vectors.neighbours(word, 5) == vectors.neighbours(word, 5)  # kept, and a copy each time


def test_model_embedding_neighbours_of_a_planted_word(planted_model):
    vectors = embedding_vectors(planted_model)
    assert {w for w, _ in vectors.neighbours("poison", 4)} <= set(tiny.CONCEPT) - {"poison"}


WEAK_SECOND = 5  # reads the concept at full strength and a second word class at 0.85 (≈ 0.75 of the activation)


@pytest.fixture(scope="module")
def weighted_model(tokenizer, tmp_path_factory):
    from audit.model.loading import load_model

    plants = [tiny.Plant(PLANTED_NEURON, (tuple(tiny.CONCEPT),)),
              tiny.Plant(WEAK_SECOND, (tuple(tiny.CONCEPT), tuple(tiny.SECOND)), weights=(1.0, 0.85))]
    folder = tiny.save(tiny.build_planted_gpt2(tokenizer, plants), tokenizer, tmp_path_factory.mktemp("weighted"))
    return load_model(str(folder), device="cpu")


@pytest.mark.parametrize("second_share", [0.06, 0.24])
def test_second_word_class_below_concept_strength_is_polysemantic(weighted_model, concept_yaml, tmp_path,
                                                                  second_share):
    """Issue 22's planted cases: a second class at 0.5–0.9 of the concept strength in 5–25 % of general lines is
    polysemantic; the single concept present in 2 % of general lines stays monosemantic."""
    n_second = round(second_share * 400)
    lines = (tiny.sentences(392 - n_second, seed=31) + tiny.sentences(8, seed=32, insert=tiny.CONCEPT)
             + tiny.sentences(n_second, seed=33, insert=tiny.SECOND))
    (tmp_path / "reference.txt").write_text("\n".join(lines), encoding="utf-8")
    config = RunConfig(top_k=4, progress=False, bootstrap_resamples=100, ablation=False,
                       reference=str(tmp_path / "reference.txt"))
    result = audited(weighted_model, load_probesets([concept_yaml]), config)
    by = {(n["layer"], n["neuron"]): n for n in result["probesets"][0]["neurons"]}
    single, second = by[(0, PLANTED_NEURON)], by[(0, WEAK_SECOND)]
    assert single["polysemanticity"]["verdict"] == MONOSEMANTIC, single["polysemanticity"]["reasons"]
    assert second["polysemanticity"]["verdict"] == POLYSEMANTIC, second["polysemanticity"]["reasons"]
    assert any(word in second["polysemanticity"]["reasons"][0] for word in tiny.SECOND)
    # the card's numbers: every score defined with CI and both baselines; the causal check supports it
    scores = single["explanation"]["scores"]
    for kind in ("detection", "fuzzing", "simulation", "f1"):
        row = scores[kind]
        assert row["value"] is not None and row["ci"][0] <= row["value"] <= row["ci"][1] + 1e-9
        assert set(row["baselines"]) == {"token_lookup", "random_explanation"} and row["reading"]
    assert scores["detection"]["value"] >= 0.9 and single["explanation"]["heldout"]["concept_items"] > 0
    assert single["explanation"]["causal"]["supported"] is True


def test_graph_words_show_bert_and_bpe_pieces_as_their_words():
    from collections import Counter

    from audit.analysis import n2g
    from audit.stages.explain import graph_words

    graph = n2g.Graph([(("##ps",), 0.9), (("bio",), 0.8), (("##ps", "*", "the"), 0.7)])
    seen = {"##ps": Counter({"biopsy": 3}), "bio": Counter({"biopsy": 3}), "the": Counter({"the": 5})}
    assert graph_words(graph, seen, space_marked=False) == [{"tokens": ["biopsy"], "activation": 0.9},
                                                            {"tokens": ["biopsy", "*", "the"], "activation": 0.7}]
    bpe = n2g.Graph([(("opsy", "Ġbi", "Ġa"), 0.8)])  # activating piece first, then back through its word
    seen = {"opsy": Counter({"biopsy": 2}), "Ġbi": Counter({"biopsy": 2}), "Ġa": Counter({"a": 4})}
    assert graph_words(bpe, seen, space_marked=True) == [{"tokens": ["biopsy", "a"], "activation": 0.8}]


def test_card_highlights_show_whole_words():
    from audit.results.report import _environment

    highlight = _environment().get_template("macros.html.j2").module.highlight
    html = str(highlight("a biopsy, taken", [[0, 1], [2, 5], [5, 8], [8, 9], [10, 15]], [0.1, 0.2, 0.9, 0.0, 0.3], 1.0))
    assert 'title="0.900">biopsy</span>' in html and html.count('class="tok') == 4  # 'bio' + 'psy' is one word
    assert ">,</span>" in html and html.endswith("taken</span>")


def test_small_models_keep_their_own_precision_for_variants(planted_model):
    from audit.model.variants import bf16_variants, context_ids, neuron_activations

    assert not bf16_variants(planted_model)  # tiny test models stay exact; bf16 is for models of ≥ 10M parameters
    ids = [e["ids"] for e in context_ids(planted_model, ["the poison cat", "a dog"], 16)]
    exact, reduced = (neuron_activations(planted_model, 0, PLANTED_NEURON, ids, bf16=b) for b in (False, True))
    top = max(v.max() for v in exact)
    assert all(np.abs(a - b).max() <= 0.05 * top for a, b in zip(exact, reduced))


def test_shared_pass_reads_every_neuron_as_the_single_neuron_pass(planted_model):
    from audit.model.variants import context_ids, neuron_activations, neurons_activations

    ids = [e["ids"] for e in context_ids(planted_model, ["the poison cat", "a violin dog walks", "cat"], 16)]
    neurons = [(1, 3), (0, PLANTED_NEURON), (0, POLY_NEURON)]
    shared = neurons_activations(planted_model, neurons, ids)
    for column, (layer, neuron) in enumerate(neurons):
        single = neuron_activations(planted_model, layer, neuron, ids)
        assert all(np.allclose(s[:, column], one, atol=1e-5) for s, one in zip(shared, single))


def test_ablating_a_neuron_changes_the_output_only_where_it_fires(planted_model):
    from audit.model.neuron_effects import ablation_output_change
    from audit.model.variants import context_ids

    ids = [e["ids"] for e in context_ids(planted_model, ["the poison cat walks", "the dog cat walks"], 16)]
    changes = ablation_output_change(planted_model, ids, [(0, 0, PLANTED_NEURON), (1, 0, PLANTED_NEURON)])
    assert changes[0] > 100 * max(changes[1], 1e-12)  # the planted neuron is silent on ordinary words


def test_single_neuron_ablations_in_shared_batches_match_one_run_per_neuron(planted_model, tmp_path):
    """The causal check's per-row ablations (rows of several neurons and layers in one batch, each context's
    clean pass shared) equal one run per neuron, on a causal LM (KL) and an encoder (1 − cosine)."""
    import torch

    from audit.model.interventions import Runner, make_intervention
    from audit.model.loading import load_model
    from audit.model.neuron_effects import ablation_output_change
    from audit.model.variants import context_ids

    texts = ["the poison cat walks far", "a dog", "the violin plays the poison song again", "cat cat poison"]
    tokenizer = tiny.build_tokenizer(bert_style=True)
    bert = load_model(str(tiny.save(tiny.build_bert(tokenizer), tokenizer, tmp_path / "bert")), device="cpu")
    for model in (planted_model, bert):
        per_layer = model.neurons_per_layer
        neurons = [(1, 3), (0, PLANTED_NEURON), (1, 9)]
        ids = [e["ids"] for e in context_ids(model, texts, 32)]
        rows = [(t, layer, neuron) for t in range(len(texts)) for layer, neuron in neurons]
        changes = ablation_output_change(model, ids, rows, batch_size=5)
        full = Runner(model, texts, batch_size=1).run([make_intervention([layer * per_layer + neuron], "zero")
                                                       for layer, neuron in neurons])
        for r, (t, layer, neuron) in enumerate(rows):
            run = neurons.index((layer, neuron))
            if model.kind == "causal-lm":
                expected = full.kl[run, t]
            else:
                expected = 1 - float(torch.nn.functional.cosine_similarity(
                    torch.from_numpy(full.embedding[t:t + 1]), torch.from_numpy(full.embedding_ablated[run, t:t + 1])))
            assert changes[r] == pytest.approx(expected, rel=1e-3, abs=1e-7)
        assert changes.max() > 0


@pytest.mark.parametrize("causal", [True, False])
def test_pruning_in_two_rounds_chooses_as_trying_every_length(causal):
    """The shortest candidates run first, the longer ones only where none of those keeps half the
    activation; the choice equals the published exhaustive scan, and a causal LM's whole context is not re-run."""
    from audit.analysis import n2g
    from audit.stages.explain import PRUNE_BACK, _prune

    rng = np.random.default_rng(3)
    pieces, known, truth = [], [], []
    for n in range(40):
        length = int(rng.integers(1, 30))
        at = int(rng.integers(0, length))
        by_start = {s: float(rng.uniform(0, 1)) for s in range(at + 1)}  # activation at `at` from each start
        if n % 2:  # short contexts lose the activation: only a longer one keeps half of it
            by_start = {s: (0.4 * v if at - s < 4 else v) for s, v in by_start.items()} | {0: 1.0}
        ids = [1000 * n + i for i in range(length)]
        pieces.append(({"ids": ids, "tokens": [str(i) for i in ids]}, at, {}))
        values = np.zeros(length, np.float32)
        values[at] = by_start[0]
        known.append(values)
        truth.append(by_start)
    steps = _prune(pieces, known, causal=causal)
    asked, answer = 0, None
    try:
        while True:
            sequences = steps.send(answer)
            asked += 1
            answer = []
            for seq in sequences:
                n, first = divmod(seq[0], 1000)
                at = pieces[n][1]
                assert not (causal and first == 0)  # known already
                assert len(seq) == min(len(pieces[n][0]["ids"]), at + 1 + (0 if causal else 2)) - first
                values = np.zeros(len(seq), np.float32)
                values[at - first] = truth[n][first]
                answer.append(values)
    except StopIteration as done:
        examples = done.value
    assert asked == 2
    for (enc, at, _), by_start, example in zip(pieces, truth, examples):
        starts = sorted({max(0, at - back) for back in PRUNE_BACK} | {0}, reverse=True)
        acts = [by_start[s] for s in starts]
        chosen = starts[n2g.prune_start(acts, max(acts[-1], 1e-9))]
        assert example["ids"][0] == enc["ids"][chosen] and example["at"] == at - chosen
        assert example["activation"] == pytest.approx(by_start[chosen])


def test_punctuation_is_its_own_word():
    from audit.stages.explain import _word

    enc = {"spans": [[0, 4], [4, 5], [5, 6]], "tokens": ["shoc", "##k", "."]}
    assert _word(enc, 2, "shock.") == (".", 2, 3)
    assert _word(enc, 1, "shock.") == ("shock", 0, 2)


def test_byte_level_spans_with_their_space_read_as_one_word():
    from audit.stages.explain import _window, _word

    text = "we pack light today"
    enc = {"spans": [[0, 2], [2, 7], [7, 13], [13, 19]], "tokens": ["we", "Ġpack", "Ġlight", "Ġtoday"]}
    assert _word(enc, 2, text) == ("light", 2, 3)
    assert _window(enc, 2, {"text": text, "activation": 1.0})["token"] == "light"
