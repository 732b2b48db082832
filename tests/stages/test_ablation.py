"""Ablation: pure statistics (unit) and interventions on tiny planted models (integration)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.analysis.ablation import (
    cosine_shift,
    disparity_change_ci,
    embedding_gap,
    loglik_gap,
    null_comparison,
    null_neuron_sets,
    separability,
    specificity,
)
from audit.analysis.selectivity import concept_selectivity
from audit.config import RunConfig
from audit.model.harvest import harvest
from audit.model.interventions import aura_scale, make_intervention, measure
from audit.probes.probeset import load_probesets
from audit.probes.reference import load_reference
from audit.results.io import to_json
from audit.stages.ablation import (
    AURA,
    _doses,
    choose_targets,
    concept_ablation,
    correct_ablations,
    plan_concept,
    reference_features,
    run_plan,
)
from tests import tiny
from tests.conftest import PLANTED_NEURON


def to_json_ablation(*args, **kwargs) -> dict:
    """The ablation section exactly as results.json holds it."""
    return to_json(concept_ablation(*args, **kwargs))


CONFIG = RunConfig(progress=False, ablate_k=1, bootstrap_resamples=200, reference_texts=20, null_sets=10,
                   dose_max=3)


def test_null_sets_match_layers_and_avoid_targets():
    target = np.array([5, 7, 130])  # layer 0, 0, 1 with 128 neurons per layer
    sets = null_neuron_sets(target, 128, n_sets=50, seed=0)
    assert len(sets) == 50 and all(len(s) == 3 for s in sets)
    for chosen in sets:
        assert (chosen // 128).tolist() == [0, 0, 1] and len(set(chosen)) == 3
        assert not set(chosen) & set(target)
    assert len({tuple(s) for s in sets}) == 50
    assert [s.tolist() for s in null_neuron_sets(target, 128, n_sets=3, seed=0)] == [s.tolist() for s in sets[:3]]


def test_null_comparison_counts_ties_and_direction():
    result = null_comparison(np.array([3.0, 1.0, 2.0, 3.0, 0.0]))
    assert result["p_value"] == pytest.approx(2 / 5) and result["null"]["n"] == 4
    assert result["z"] == pytest.approx((3 - 1.5) / np.std([1, 2, 3, 0], ddof=1))
    assert null_comparison(np.array([-2.0, 0.0, -1.0]), larger_is_stronger=False)["p_value"] == pytest.approx(1 / 3)
    assert null_comparison(np.array([1.0, 1.0, 1.0]))["z"] is None


def test_small_helpers():
    assert specificity(np.array([2.0, 1.0]), np.array([0.5, 0.0])).tolist() == [4.0, np.inf]
    assert cosine_shift(np.array([[1.0, 0.0]]), np.array([[0.0, 2.0]]))[0] == pytest.approx(1.0)
    assert aura_scale(np.array([1.0, 0.75, 0.5, 0.3])).tolist() == [0.0, 0.5, 1.0, 1.0]
    values = np.array([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]])
    assert loglik_gap(values) == pytest.approx(0.0) and loglik_gap(values + np.array([[1.0], [0.0]])) == 1.0
    same = np.ones((2, 4, 3))
    assert embedding_gap(same) == pytest.approx(0.0)
    gap_one = np.array([[2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0]])  # group 0 ahead by 1 on every item
    gap_none = np.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    assert disparity_change_ci(loglik_gap, gap_one, gap_none, seed=0, n_resamples=200) == pytest.approx((-1.0, -1.0))
    assert choose_targets([5, 300, 7, 9, 260], 128, k=2, per_layer=None).tolist() == [5, 300]
    assert choose_targets([5, 300, 7, 9, 260], 128, k=2, per_layer=1).tolist() == [5, 300]


def test_separability_sees_separable_outputs():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    embeddings = rng.normal(size=(60, 8))
    assert separability(embeddings + 3.0 * labels[:, None], labels, seed=0) > 0.95
    assert separability(embeddings, labels, seed=0) < 0.8


@pytest.fixture(scope="module")
def planted(planted_model, concept_yaml):
    (probeset,) = load_probesets([concept_yaml])
    acts = harvest(planted_model, probeset.texts, progress=False)
    return probeset, acts, concept_selectivity(acts.pooled(), probeset.labels)


@pytest.fixture(scope="module")
def features(planted_model):
    """Density and mean of every planted-model neuron over a slice of the reference corpus."""
    stats = harvest(planted_model, load_reference()[:80], token_moments=True, progress=False).token_stats()
    return reference_features(stats)


def test_planted_neuron_ablation_is_validated_with_enough_sets(planted_model, planted, features):
    probeset, acts, result = planted
    kwargs = {"seed": 0, "features": features}
    section = to_json_ablation(planted_model, probeset, acts, CONFIG, load_reference(), **kwargs)
    assert section["neurons"] == [[0, PLANTED_NEURON]] and section["metric"] == "kl_positive"
    assert section["p_value"] <= 1 / 11 and section["null"]["n"] == 10 and section["z"] > 10
    assert section["specificity"] is None or section["specificity"] > 100
    assert section["metrics"]["loglik_change_positive"]["effect"] != 0
    assert section["collateral"]["metric"] == "perplexity" and section["collateral"]["n_texts"] == 20
    # resolved and corrected: every dose is a test of the family; one probe set, so each is tested at α and
    # ⌈1/α⌉ sets let the smallest p clear 0.05
    m = section["n_tests"]
    assert m == len(section["dose_response"]) and section["correction"].startswith("graphical")
    assert section["max_null_sets"] == 20 >= 1 / 0.05 - 1
    assert section["n_null_sets"] == section["max_null_sets"] and section["p_value_matched"] == 1 / 21
    assert all(row["tested"] for row in section["dose_response"])  # every dose validated, so every one reached
    assert sorted(row["order"] for row in section["dose_response"]) == list(range(1, m + 1))
    assert section["p_corrected"] < 0.05 and section["validated"] and section["verdict"] == "validated"
    assert section["smallest_validated_k"] == 1
    assert section["selection"].startswith("top 1 neurons by AUROC") and "held-apart" in section["selection"]
    rows = section["dose_response"]
    assert rows[-1]["k"] == AURA and rows[-1]["mode"] == "dampen"
    assert all(r["off_target"]["kl"] > 0 and len(r["off_target"]["perplexity_change_ci"]) == 2 for r in rows)
    assert rows[0]["specificity"]["value"] > 1 and rows[0]["specificity"]["ci"][0] <= rows[0]["specificity"]["value"]
    assert section["null_matched"]["n"] == section["n_null_sets"]


def test_dose_response_grows_with_k_on_the_planted_model(tokenizer, concept_yaml, tmp_path):
    """Twelve planted neurons read the concept: ablating more of them does more."""
    from audit.model.loading import load_model

    plants = [tiny.Plant(neuron, (tuple(tiny.CONCEPT),)) for neuron in range(20, 32)]
    model = load_model(str(tiny.save(tiny.build_planted_gpt2(tokenizer, plants, strength=4.0), tokenizer,
                                     tmp_path / "m")),
                       device="cpu")
    (probeset,) = load_probesets([concept_yaml])
    acts = harvest(model, probeset.texts, progress=False)
    features = reference_features(harvest(model, load_reference()[:40], token_moments=True,
                                          progress=False).token_stats())
    config = RunConfig(progress=False, ablate_k=3, bootstrap_resamples=200, reference_texts=20, null_sets=5,
                       dose_max=10, ablation_mode="zero")
    plan = plan_concept(model, probeset, acts, config, features, seed=0)
    ladder = [d for d in plan.doses if d.label != AURA]
    assert [d.label for d in ladder] == [1, 3, 10] and plan.n_significant >= 10
    measured = run_plan(model, probeset, plan, config, load_reference(), n_sets=20, seed=0)
    correct_ablations([measured])
    ablation = measured.ablation
    effects = [row.effect for row in ablation.dose_response if row.k != AURA]
    assert effects == sorted(effects) and effects[-1] > 2 * effects[0]  # more of them ablated, a larger effect
    assert all(row.effect > row.null_p95 for row in ablation.dose_response if row.k != AURA)


def test_non_causal_neurons_are_not_distinguishable_and_stop_early(planted_model, planted, features):
    probeset, acts, _ = planted
    plan = plan_concept(planted_model, probeset, acts, CONFIG, features, seed=0)
    ordinary = np.array([128 + 60])  # a layer-1 neuron that reads nothing planted
    means = np.zeros(256)
    plan.doses, plan.headline = _doses(ordinary, np.ones((2, 128)), ordinary, "zero", 128, features, CONFIG,
                                       means=means, scale_of=lambda t: np.zeros(len(t)))
    measured = run_plan(planted_model, probeset, plan, CONFIG, load_reference(), n_sets=400, seed=0)
    correct_ablations([measured])
    ablation = measured.ablation
    (row,) = ablation.dose_response
    assert row.stopped_early and row.n_null_sets < 100  # Besag–Clifford: 10 random sets matched it early
    assert row.p_value == pytest.approx(10 / row.n_null_sets)
    assert ablation.verdict == "not distinguishable from random neurons" and not ablation.validated
    assert ablation.smallest_validated_k is None
    again = run_plan(planted_model, probeset, plan, CONFIG, load_reference(), n_sets=400, seed=0)
    correct_ablations([again])
    assert again.ablation.dose_response[0].to_dict() | {"p_corrected": 0, "validated": 0, "verdict": 0} == \
        row.to_dict() | {"p_corrected": 0, "validated": 0, "verdict": 0}  # deterministic under a seed


def test_ordinary_neuron_ablation_is_not_significant(planted_model, planted):
    probeset, _, _ = planted
    texts = probeset.texts
    target = np.array([128 + 60])  # an ordinary layer-1 neuron
    runs = [make_intervention(s, "zero") for s in [target, *null_neuron_sets(target, 128, n_sets=20, seed=3)]]
    m = measure(planted_model, texts[:40], runs)
    assert null_comparison(m.kl.mean(axis=1))["p_value"] > 0.1


def test_modes_differ_as_expected(planted_model, planted):
    probeset, acts, _ = planted
    texts = probeset.texts[:40]  # positives: they hold the concept words
    flat = np.array([PLANTED_NEURON])
    means = np.full(2 * 128, 0.7)
    runs = [make_intervention(flat, "zero"), make_intervention(flat, "dampen", scales=[0.0]),
            make_intervention(flat, "dampen", scales=[0.5]), make_intervention(flat, "mean", means=means)]
    m = measure(planted_model, texts, runs)
    kl = m.kl.mean(axis=1)
    assert kl[0] == pytest.approx(kl[1], abs=1e-9)  # full dampening is zero ablation
    assert 0 < kl[2] < kl[0]  # half dampening does less
    assert kl[3] > 0 and kl[3] != pytest.approx(kl[0])
    with pytest.raises(ValueError, match="'mode' parameter must be one of"):
        make_intervention(flat, "scramble")


def test_mean_mode_writes_the_mean_into_the_site(planted_model):
    means = np.zeros(256)
    means[PLANTED_NEURON] = 0.7
    intervention = make_intervention(np.array([PLANTED_NEURON]), "mean", means=means)
    calls = []  # a forward hook sees the module's input after every pre-hook rewrote it
    handle = planted_model.sites.modules[0].register_forward_hook(lambda mod, args, out: calls.append(args[0].clone()))
    try:
        measure(planted_model, ["the poison cat"], [intervention])
    finally:
        handle.remove()
    clean, ablated = calls
    assert clean[..., PLANTED_NEURON].max() > 1.0  # "poison" drives the planted neuron
    assert torch.allclose(ablated[..., PLANTED_NEURON], torch.tensor(0.7))
    others = [i for i in range(128) if i != PLANTED_NEURON]
    assert torch.equal(clean[..., others], ablated[..., others])


def test_encoder_ablation_reports_shift_and_separability(tmp_path):
    import random

    import yaml

    from audit.model.loading import load_model

    tokenizer = tiny.build_tokenizer(bert_style=True)
    model = load_model(str(tiny.save(tiny.build_bert(tokenizer), tokenizer, tmp_path / "bert")), device="cpu")
    rng = random.Random(0)
    positive = [" ".join(rng.choice(tiny.CONCEPT) for _ in range(5)) + f" {i}" for i in range(60)]
    document = {"name": "enc", "description": "d", "kind": "concept", "concept": "c", "positive": positive,
                "negative": tiny.sentences(60, seed=21)}
    (tmp_path / "enc.yaml").write_text(yaml.safe_dump(document))
    (probeset,) = load_probesets([tmp_path / "enc.yaml"])
    acts = harvest(model, probeset.texts, progress=False)
    config = RunConfig(progress=False, ablate_k=3, reference_texts=20, ablation_mode="dampen")
    section = to_json_ablation(model, probeset, acts, config, load_reference(), seed=0)
    assert section["metric"] == "embedding_shift_positive" and len(section["neurons"]) == 3
    assert all(0.0 <= scale < 1.0 for scale in section["scales"])  # dampened: chosen for AUROC > 0.5
    assert 0.0 <= section["metrics"]["separability_drop"]["clean_auroc"] <= 1.0
    assert section["collateral"]["metric"].startswith("embedding shift")
    held_apart = 60 - config.ablation_texts  # texts used to choose the neurons, not to judge them
    assert section["evaluated"]["chosen_on"] == {"n_positive": held_apart, "n_negative": held_apart}


def test_ablation_is_skipped_without_selective_neurons(planted_model, features, tmp_path):
    import yaml

    document = {"name": "noise", "description": "d", "kind": "concept", "concept": "none",
                "positive": tiny.sentences(30, seed=31), "negative": tiny.sentences(30, seed=32)}
    (tmp_path / "noise.yaml").write_text(yaml.safe_dump(document))
    (probeset,) = load_probesets([tmp_path / "noise.yaml"])
    acts = harvest(planted_model, probeset.texts, progress=False)
    section = to_json_ablation(planted_model, probeset, acts, CONFIG, load_reference(), seed=0, features=features)
    assert "skipped" in section and "p_value" not in section


def test_too_many_ablated_neurons_per_layer_is_an_input_error():
    from audit.errors import AuditInputError
    from audit.stages.ablation import _check_drawable

    with pytest.raises(AuditInputError, match="--ablate-k/--ablate-per-layer: 100 neurons of layer 0"):
        _check_drawable(np.arange(100), 128)
    _check_drawable(np.arange(64), 128)


def test_aura_scale_is_apples_formula():
    """apple/ml-aura: α = 1 − 2·(AUROC − 0.5) for a neuron with AUROC > 0.5; the others are left alone."""
    auroc = np.array([0.95, 0.8, 0.6, 0.5, 0.3])
    hand = [1 - 2 * (0.95 - 0.5), 1 - 2 * (0.8 - 0.5), 1 - 2 * (0.6 - 0.5), 1.0, 1.0]
    assert aura_scale(auroc) == pytest.approx(hand)
    assert aura_scale(np.array([1.0]))[0] == 0.0  # a perfect neuron is silenced


def test_verdict_strings():
    from audit.stages.ablation import verdict

    assert verdict(True, True, False, 80) == "validated"
    assert verdict(False, True, False, 80) == "not resolved with 80 random sets"
    assert verdict(False, True, True, 23) == "not distinguishable from random neurons"
    assert verdict(False, False, False, 80) == "not distinguishable from random neurons"
    # 2 of 60 random sets as strong: plausible for a true p at α/3 (binomial tail 0.26), more sets could settle it
    assert verdict(False, True, False, 60, exceedances=2, level=0.05 / 3) == "not resolved with 60 random sets"
    # 6 of 60: a tail of 0.0005 at α/3 — the effect is simply not rare among random sets
    assert verdict(False, True, False, 60, exceedances=6, level=0.05 / 3) == "not distinguishable from random neurons"


def test_runner_from_the_first_ablated_layer_matches_a_full_forward(planted_model, planted, tmp_path):
    """Forwards that start at the first rewritten layer (the stream before it kept) give the full forward's
    numbers, on a causal LM and on an encoder."""
    from audit.model.interventions import Runner
    from audit.model.loading import load_model

    probeset, _, _ = planted
    texts = probeset.texts[:10]
    runs = [make_intervention(s, "zero") for s in ([128 + 3, 128 + 9], [128 + 17], [PLANTED_NEURON, 140])]
    skipping = Runner(planted_model, texts, batch_size=4, start_layers=[1])
    full = Runner(planted_model, texts, batch_size=4)
    assert [skipping.start_layer(r) for r in runs] == [1, 1, 0]
    a, b = skipping.run(runs), full.run(runs)
    np.testing.assert_allclose(a.kl, b.kl, atol=1e-6)
    np.testing.assert_allclose(a.loglik_ablated, b.loglik_ablated, atol=1e-5)
    assert a.kl[0].max() > 0
    tokenizer = tiny.build_tokenizer(bert_style=True)
    bert = load_model(str(tiny.save(tiny.build_bert(tokenizer), tokenizer, tmp_path / "bert")), device="cpu")
    runs = [make_intervention([96 + 5, 96 + 7], "zero"), make_intervention([96 + 1], "zero")]
    a = Runner(bert, texts, batch_size=3, start_layers=[1], max_stack=6).run(runs)
    b = Runner(bert, texts, batch_size=3).run(runs)
    np.testing.assert_allclose(a.embedding_ablated, b.embedding_ablated, atol=1e-5)
    assert np.abs(a.embedding_ablated[0] - a.embedding).max() > 0


def test_stacked_interventions_match_one_at_a_time(planted_model, planted):
    """Accelerators run several interventions per forward by stacking copies of a batch; same numbers."""
    probeset, _, _ = planted
    target = np.array([PLANTED_NEURON, 128 + 5])
    runs = [make_intervention(s, "zero") for s in [target, *null_neuron_sets(target, 128, n_sets=4, seed=0)]]
    one = measure(planted_model, probeset.texts[:12], runs, batch_size=4, max_stack=4)
    stacked = measure(planted_model, probeset.texts[:12], runs, batch_size=4, max_stack=12)
    np.testing.assert_allclose(stacked.kl, one.kl, atol=1e-6)
    np.testing.assert_allclose(stacked.loglik_ablated, one.loglik_ablated, atol=1e-5)


def test_correction_runs_each_sets_doses_in_order_and_passes_alpha_across_sets():
    """Two sets: A (k = 3, then k = 1) and B (k = 3, k = 1, AurA), each starting with α/2. Hand computation
    of the graphical procedure: A's k = 3 (p 1/81, p/w 2/81) and k = 1 (1/81 → 2/81) are rejected; A's α then
    passes to B, whose k = 3 (p 3/81 — 0.074 at α/2 alone) is rejected at the full α; B's k = 1 (p 10/28) is
    not, so B's AurA is never tested and draws no more random sets."""
    from audit.analysis.multiple_testing import SequentialTest, holm
    from audit.results.contract import Ablation, DoseRow, NullDistribution
    from audit.stages.ablation import Measured, PendingTest, testing_order

    def drawn(p: str) -> list[float]:
        return {"1/81": [0.0] * 80, "3/81": [2.0, 2.0] + [0.0] * 78, "10/28": [2.0, 0.0, 0.0] * 9 + [2.0]}[p]

    def measured(k: int, rows: list[tuple[int | str, str]]) -> Measured:
        a = Ablation(neurons=[[0, i] for i in range(k)], mode="mean", metric="kl_positive", effect=1.0,
                     null=NullDistribution(mean=0.0, std=1.0, n=5, values=[0.0] * 5), z=1.0, p_value=0.2,
                     evaluated={})
        a.dose_response = [DoseRow(k=label, n_neurons=1, mode="mean", effect=1.0, null_mean=0.0, null_std=1.0,
                                   null_p95=0.5, n_null_sets=0, stopped_early=False, p_value=1.0,
                                   expected_direction=False, null_layer={}, off_target=None, specificity=None,
                                   tested=False) for label, _ in rows]

        def never(n: int, chunk: int) -> np.ndarray:
            raise AssertionError("no random sets beyond those given")

        tests = [PendingTest(row, SequentialTest(1.0, n_max=80, values=drawn(p)), never, True)
                 for row, (_, p) in zip(a.dose_response, rows)]
        return Measured(a, [tests[i] for i in testing_order([label for label, _ in rows])])

    first = measured(1, [(1, "1/81"), (3, "1/81")])
    second = measured(3, [(1, "10/28"), (3, "3/81"), (AURA, "1/81")])
    assert [t.row.k for t in second.tests] == [3, 1, AURA]
    assert correct_ablations([first, second]) == 5
    (a1, a3), (b1, b3, b_aura) = first.ablation.dose_response, second.ablation.dose_response
    assert [a3.p_corrected, a1.p_corrected, b3.p_corrected] == pytest.approx([2 / 81, 2 / 81, 3 / 81])
    assert b1.p_corrected == pytest.approx(10 / 28) and b_aura.p_corrected is None
    assert [r.validated for r in (a1, a3, b3, b1, b_aura)] == [True, True, True, False, False]
    assert [r.tested for r in (a1, a3, b3, b1, b_aura)] == [True, True, True, True, False]
    assert b_aura.verdict == ("not tested: the stronger dose before it in the fixed order (k = 1) was not "
                              "validated")
    assert b1.verdict == "not distinguishable from random neurons"  # 10 random sets matched it: stopped early
    assert first.ablation.validated and first.ablation.smallest_validated_k == 1
    assert second.ablation.validated and second.ablation.smallest_validated_k == 3
    assert first.ablation.n_tests == 5 and first.ablation.correction.startswith("graphical")
    # Holm over all five tests would have lost B's k = 3: 5 × 1/81, 4 × 1/81, 3 × 3/81 = 0.11
    assert holm([1 / 81, 1 / 81, 3 / 81, 10 / 28, 1 / 81])[3] > 0.05


def test_perplexity_only_measurements_keep_no_clean_distributions(planted_model, planted):
    """kl=False (the deactivation matrix): the same log-likelihoods, no KL, and no per-position vocabulary
    distributions kept between runs (a 262,144-token vocabulary would not fit for a thousand texts)."""
    from audit.model.interventions import Runner

    probeset, _, _ = planted
    runs = [make_intervention(s, "zero") for s in [np.array([PLANTED_NEURON]), np.array([128 + 5])]]
    full = measure(planted_model, probeset.texts[:12], runs, batch_size=4)
    light = measure(planted_model, probeset.texts[:12], runs, batch_size=4, kl=False)
    np.testing.assert_allclose(light.loglik_ablated, full.loglik_ablated, atol=1e-6)
    np.testing.assert_allclose(light.loglik, full.loglik, atol=1e-6)
    assert light.kl is None and full.kl is not None and (full.kl[0] > 0).all()
    runner = Runner(planted_model, probeset.texts[:12], batch_size=4, kl=False)
    assert all(batch["clean"] is None for batch in runner.batches)


def test_runner_outputs_equal_the_log_softmax_formulas_of_an_independent_ablation(planted_model, planted):
    """KL and log-likelihood from the runner (a perplexity-only runner reads log-likelihoods straight from the
    logits) equal mean_kl / mean_loglik over log-softmax outputs of an independently ablated forward."""
    from audit.model.harvest import model_inputs, tokenize
    from audit.model.interventions import Runner
    from audit.model.outputs import mean_kl, mean_loglik, model_outputs

    probeset, _, _ = planted
    texts = probeset.texts[:10]
    layer, neuron = divmod(PLANTED_NEURON, planted_model.neurons_per_layer)
    zeroed = [make_intervention(np.array([PLANTED_NEURON]), "zero")]
    measured = Runner(planted_model, texts, batch_size=4).run(zeroed)
    loglik_only = Runner(planted_model, texts, batch_size=4, kl=False).run(zeroed)

    def zero(_module, args):
        x = args[0].clone()
        x[..., neuron] = 0.0
        return (x, *args[1:])

    inputs = model_inputs(planted_model, tokenize(planted_model, texts, 128))
    with torch.inference_mode():
        clean = model_outputs(planted_model, inputs)
        handle = planted_model.sites.modules[layer].register_forward_pre_hook(zero)
        try:
            ablated = model_outputs(planted_model, inputs)
        finally:
            handle.remove()
    kl = mean_kl(clean, ablated, inputs).numpy()
    assert kl.max() > 1e-4  # the planted neuron matters on these texts: the check is not vacuous
    np.testing.assert_allclose(measured.kl[0], kl, rtol=1e-3, atol=1e-8)
    for m in (measured, loglik_only):
        np.testing.assert_allclose(m.loglik_ablated[0], mean_loglik(ablated, inputs).numpy(), rtol=1e-5)
        np.testing.assert_allclose(m.loglik, mean_loglik(clean, inputs).numpy(), rtol=1e-5)
    assert loglik_only.kl is None
