"""Explanation scores against hand computations of their formulas (delphi's balanced accuracy and sampling,
Pearson simulation, token F1), undefined scores as None, and the causal check."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis import explanation_scores as es
from audit.analysis.words import common_words, is_function_word, merge_pieces, word_spans


def test_balanced_accuracy_is_delphis_tpr_plus_tnr_over_two():
    predicted = [True, True, False, False, True]
    actual = [True, False, False, True, True]
    # TPR = 2/3 (positives 0, 3, 4: hit 0 and 4), TNR = 1/2 (negatives 1, 2: hit 2)
    assert es.balanced_accuracy(predicted, actual) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert es.balanced_accuracy([True, False], [True, True]) is None  # delphi would print TNR 0: undefined here


def test_quantile_sample_draws_per_quantile_as_delphi():
    rng = np.random.default_rng(0)
    maxima = np.r_[np.linspace(1.0, 0.5, 100), np.full(80, 0.1)]  # 100 activating (strongest first), 80 quiet
    chosen, labels = es.quantile_sample(maxima, rng)
    active = chosen[labels >= 0]
    assert len(active) == 50 and np.bincount(labels[labels >= 0]).tolist() == [5] * 10
    for q in range(10):  # quantile q holds ranks 10q … 10q+9 of the strongest-first order
        assert set(active[labels[labels >= 0] == q]) <= set(range(10 * q, 10 * q + 10))
    assert (labels == -1).sum() == 50 and all(maxima[i] < 0.5 for i in chosen[labels == -1])
    few, few_labels = es.quantile_sample(np.r_[0.9, 0.7, 0.1], rng)
    assert sorted(few.tolist()) == [0, 1, 2] and sorted(few_labels.tolist()) == [-1, 0, 1]


def test_scores_match_hand_computations():
    actual = [np.array([0.0, 1.0, 0.2]), np.array([0.1, 0.0, 0.6]), np.array([0.0, 0.1, 0.2])]
    predicted = [np.array([0.0, 0.9, 0.0]), np.array([0.0, 0.0, 0.0]), np.array([0.7, 0.0, 0.0])]
    rng = np.random.default_rng(0)
    sample = np.array([0, 1, 2])
    fuzz = es.fuzz_highlights(actual, sample, rng)
    assert [c for _, _, c in fuzz] == [True, True, False] and fuzz[0][1].tolist() == [1]
    out = es.score_predictor(predicted, actual, sample, fuzz, rng, resamples=200)
    # detection: contexts 0, 1 fire; predicted 0 and 2 fire -> TPR 1/2, TNR 0/1
    assert out["detection"]["value"] == pytest.approx(0.25)
    x, y = np.concatenate(predicted), np.concatenate(actual)
    assert out["simulation"]["value"] == pytest.approx(np.corrcoef(x, y)[0, 1])
    # tokens: firing (1, 5), predicted (1, 6): tp 1, fp 1, fn 1 -> F1 = 2/4
    assert out["f1"]["value"] == pytest.approx(0.5)
    for row in out.values():
        assert row["ci"] is None or row["ci"][0] <= row["value"] + 1e-9 <= row["ci"][1] + 2e-9


def test_undefined_scores_are_none_with_a_reason_never_zero():
    quiet = [np.array([0.1, 0.2]), np.array([0.0, 0.3])]
    result = es.explanation_scores(quiet, {"explanation": [np.zeros(2)] * 2, "token_lookup": [np.zeros(2)] * 2,
                                           "random_explanation": None}, np.random.default_rng(0))
    for kind in ("detection", "fuzzing", "f1"):
        assert result[kind]["value"] is None and result[kind]["reason"] == es.NO_FIRING
        assert result[kind]["reading"].startswith("undefined")
    assert result["simulation"]["value"] is None and result["simulation"]["reason"] == es.FLAT_PREDICTION
    assert result["f1"]["baselines"]["random_explanation"]["reason"] == es.NO_OTHER


def test_perfect_predictor_beats_lookup_and_reading_says_so():
    rng = np.random.default_rng(1)
    actual = [np.where(rng.random(8) < 0.2, 1.0, 0.0) for _ in range(120)]
    lookup = [np.ones(8) for _ in actual]  # predicts firing everywhere
    result = es.explanation_scores(actual, {"explanation": actual, "token_lookup": lookup,
                                            "random_explanation": lookup}, rng, resamples=200)
    assert result["detection"]["value"] == 1.0 and result["fuzzing"]["value"] == 1.0
    assert result["detection"]["baselines"]["token_lookup"]["value"] == 0.5
    assert "better than token lookup" in result["detection"]["reading"]
    assert "10 of 10" in result["detection"]["reading"]


def test_causal_efficacy_supported_only_when_firing_contexts_change_more():
    rng = np.random.default_rng(0)
    strong = es.causal_efficacy([1.0, 1.2, 0.9, 1.1], [0.1, 0.2, 0.1, 0.15], rng)
    assert strong["supported"] and strong["difference"] == pytest.approx(1.05 - 0.1375)
    flat = es.causal_efficacy([0.1, 0.2, 0.1, 0.15], [0.1, 0.2, 0.1, 0.15], rng)
    assert flat["supported"] is False and flat["reading"].startswith("not causally supported")
    few = es.causal_efficacy([1.0], [0.1, 0.2, 0.3], rng)
    assert few["supported"] is None and few["difference"] is None and "fewer than 3" in few["reason"]


def test_function_words_from_the_stop_list_and_the_corpus():
    assert is_function_word("The") and is_function_word("and") and is_function_word(",")
    assert not is_function_word("fire") and not is_function_word("preeclampsia")
    assert is_function_word("t") and is_function_word("don")  # pieces of "don't"
    common = common_words(["der Hund", "der Baum", "ein Haus"] * 4, share=0.5)
    assert "der" in common and is_function_word("der", common) and not is_function_word("hund", common)


def test_pieces_merge_into_words_for_bert_and_byte_level_bpe():
    assert merge_pieces(["bio", "##ps", "##y", "*", "the"], space_marked=False) == [
        (0, 3, "biopsy"), (3, 4, "*"), (4, 5, "the")]
    assert [w for _, _, w in merge_pieces(["Ġbi", "opsy", "Ġtaken"], space_marked=True)] == ["biopsy", "taken"]
    text = "a biopsy, taken"
    spans = [(0, 1), (2, 5), (5, 8), (8, 9), (10, 15)]
    assert word_spans(text, spans) == [(0, 1), (1, 3), (3, 4), (4, 5)]


def test_description_names_function_words_and_keeps_content_words_apart():
    from audit.analysis.explain import describe

    rows = [{"token": "the", "score": 1.0, "function_word": True},
            {"token": "Preeclampsia", "score": 0.9, "function_word": False},
            {"token": "intraocular", "score": 0.8, "function_word": False}]
    text = describe(rows, {"coherent": False, "value": 0.12}, {"n": 0},
                    function_words={"peaks_on_function_words": True, "words": ["the", "and"]}, setting="clinical")
    assert text == ("fires on function words ('the', 'and') inside clinical sentences; content words among its top: "
                    "'Preeclampsia', 'intraocular' (no clear shared meaning, similarity 0.12)")
    plain = describe(rows, {"coherent": True, "value": 0.62}, {"n": 0},
                     function_words={"peaks_on_function_words": False, "words": ["the"]})
    assert plain.startswith("fires on a coherent word group (similarity 0.62) such as 'Preeclampsia'")


def test_versus_token_lookup_reads_the_interval_against_the_baseline():
    lookup = {"value": 0.6}
    assert es.versus(0.8, [0.7, 0.9], lookup) == "better"
    assert es.versus(0.4, [0.3, 0.5], lookup) == "worse"
    assert es.versus(0.65, [0.55, 0.75], lookup) == "same"  # the interval holds lookup's score
    assert es.versus(0.8, None, lookup) == "same"  # no interval: no claim either way
    assert es.versus(None, None, lookup) == es.versus(0.8, [0.7, 0.9], {"value": None}) == "undefined"


def test_every_score_carries_its_comparison_with_token_lookup():
    rng = np.random.default_rng(0)
    actual = [rng.random(8) for _ in range(40)]
    scores = es.explanation_scores(actual, {"explanation": actual, "token_lookup": [a * 0 for a in actual],
                                            "random_explanation": None}, rng, resamples=200)
    for kind, row in scores.items():
        assert row["versus_token_lookup"] == es.versus(row["value"], row["ci"], row["baselines"]["token_lookup"])
    assert scores["simulation"]["versus_token_lookup"] in ("better", "undefined")
