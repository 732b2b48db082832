"""N2G graphs and method A scoring on hand-made examples (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis import explain as method_a
from audit.analysis import n2g


def test_pattern_keeps_important_context_and_wildcards_the_rest():
    tokens = ["the", "big", "red", "dog", "barks"]
    important = [False, True, False, False, True]
    assert n2g.pattern(tokens, 3, important) == ["dog", "*", "big"]
    assert n2g.pattern(tokens, 3, [False] * 5) == ["dog"]


def test_prediction_takes_the_deepest_completed_pattern():
    graph = n2g.Graph([(["dog"], 0.9), (["dog", "*", "hot"], 0.1), (["bark", "dog"], 0.8)])
    assert graph.predict(["a", "big", "dog"], 2) == 0.9
    assert graph.predict(["hot", "big", "dog"], 2) == 0.1  # the more specific pattern wins
    assert graph.predict(["dog", "bark"], 1) == 0.8 and graph.predict(["cat", "bark"], 1) == 0.0
    assert graph.predict(["cat"], 0) == 0.0
    assert n2g.Graph.from_list(graph.to_list()).patterns == graph.patterns


def test_fidelity_scores_against_both_baselines():
    graph = n2g.Graph([(["dog"], 1.0), (["dog", "hot"], 0.0)])
    baselines = n2g.Baselines()
    baselines.learn(["a", "dog", "hot", "dog"], [0.0, 1.0, 0.0, 0.0])
    held = [(["hot", "dog", "the", "dog"], np.array([0.0, 0.0, 0.0, 0.9]))]
    scores = n2g.fidelity(graph, baselines, held)
    assert scores["graph"]["f1"] == 1.0
    assert scores["token_lookup"]["precision"] == 0.5 and scores["token_lookup"]["recall"] == 1.0
    assert scores["ngram"]["f1"] == 0.0 and scores["graph"]["n_firing"] == 1


def test_saliency_and_pruning_rules():
    assert n2g.importance(2.0, [0.2, 1.9, 0.6]) == [True, False, False]
    assert n2g.prune_start([0.1, 0.4, 0.9, 1.0], 1.0) == 2


def test_graph_similarity_is_jaccard_of_firing_patterns():
    a = n2g.Graph([(["x"], 1.0), (["y"], 0.9), (["z"], 0.1)])
    assert n2g.similarity(a, n2g.Graph([(["x"], 0.7), (["y"], 0.6)])) == 1.0
    assert n2g.similarity(a, n2g.Graph([(["x"], 0.7)])) == 0.5


def test_token_scores_normalise_and_hide_weak_tokens():
    rows = method_a.token_scores(["Biopsy", "biopsy", "stent", "the"], [2.0, 4.0, 3.0, 1.0])
    assert [r["token"] for r in rows] == ["biopsy", "stent"] and rows[0]["score"] == 1.0 and rows[1]["score"] == 0.75
    assert method_a.token_scores(["x"], [-1.0]) == []


def test_coherence_excludes_self_pairs_and_compares_with_random_sets():
    same = np.tile([[1.0, 0.0, 0.0]], (3, 1))
    assert method_a.mean_pairwise_cosine(same) == pytest.approx(1.0)  # self-pairs would not change this ...
    mixed = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert method_a.mean_pairwise_cosine(mixed) == 0.0  # ... but here they would make it 0.5
    rng = np.random.default_rng(0)

    def null(n):
        v = rng.normal(size=(n, 8))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    tight = np.tile(np.eye(8)[:1], (4, 1)) + 0.05 * rng.normal(size=(4, 8))
    tight /= np.linalg.norm(tight, axis=1, keepdims=True)
    assert method_a.coherence(tight, null)["coherent"]
    assert not method_a.coherence(null(4), null)["coherent"]
    assert method_a.coherence(None, null) is None


def test_substitutions_count_gains_and_losses():
    rows = [{"original": 2.0, "activation": 3.0}, {"original": 2.0, "activation": 0.5},
            {"original": 2.0, "activation": 1.6}]
    summary = method_a.substitution_summary(rows, top_activation=3.0)
    assert summary == {"n": 3, "firing": 2, "gains": 1, "losses": 1,
                       "mean_relative_change": pytest.approx((0.5 - 0.75 - 0.2) / 3)}
    text = method_a.describe([{"token": "biopsy"}, {"token": "stent"}], {"coherent": True, "value": 0.7}, summary)
    assert text == "fires on a coherent word group (similarity 0.70) such as 'biopsy', 'stent'; " \
                   "2 of 3 in-context substitutes also fire"


def test_near_identical_graphs_are_cross_linked():
    from types import SimpleNamespace

    from audit.stages.explain import _link_similar

    def entry(name, patterns):
        graph = [{"tokens": list(p), "activation": 0.9} for p in patterns]
        return SimpleNamespace(name=name, explanation=SimpleNamespace(graph=graph)), "set", None

    entries = [entry("L0.N1", [("a",), ("b",)]), entry("L1.N2", [("a",), ("b",)]), entry("L2.N3", [("c",)])]
    _link_similar(entries)
    assert entries[0][0].explanation.similar_neurons == ["L1.N2"]
    assert entries[2][0].explanation.similar_neurons == []


def test_one_token_patterns_keep_the_tokens_whose_rate_maximises_training_f1():
    from audit.analysis.n2g import firing_tokens

    observed = {"always": [0.9] * 10, "half": [0.8, 0.1] * 5, "once": [0.7] + [0.0] * 30, "never": [0.2] * 9}
    # 16 firing uses: "always" alone gives F1 20/26 = .77, with "half" 30/36 = .83, with "once" too 32/67 = .48
    kept = firing_tokens(observed)
    assert set(kept) == {"always", "half"}
    assert kept["always"] == pytest.approx(0.9) and kept["half"] == pytest.approx(0.8)
    # a neuron that is easy to predict: a token firing on a third of its uses costs more than it finds
    # ("always" alone 80/82 = .976, with "third" 84/88 = .955)
    easy = {"always": [0.9] * 40, "third": [0.8, 0.1, 0.1] * 2}
    assert set(firing_tokens(easy)) == {"always"}
    assert firing_tokens({"never": [0.1, 0.2]}) == {}
