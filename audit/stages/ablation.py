"""Validate flagged neurons by ablation: intervene on them at several doses, measure the model's outputs,
and compare each dose with random neuron sets — matched on layer and activation statistics for the verdict
(drawn sequentially, Besag–Clifford), on layer only beside it. The audit's doses are one correction family
(:func:`correct_ablations`): per probe set a fixed sequence from the largest k down to k = 1, then AurA
dampening, the sets joined as in Holm's procedure (a graphical procedure, Bretz et al. 2009); a dose
is only tested, and only then drawn to full resolution, once every stronger dose of its set is validated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy.stats import binom

from ..analysis.ablation import (
    cosine_shift,
    disparity_change_ci,
    embedding_gap,
    loglik_gap,
    null_comparison,
    null_neuron_sets,
    separability,
    specificity_comparison,
)
from ..analysis.disparity import bootstrap_mean_ci, group_selective_ranking
from ..analysis.dose import dose_ladder, off_target_cost, specificity_ratio
from ..analysis.matching import density_strata, matched_null_sets, permuted_scales
from ..analysis.multiple_testing import ALPHA as FWER_ALPHA, SequentialTest, chain_graph, graphical_test, sets_needed
from ..analysis.preference import first_pair_share
from ..analysis.resident import release
from ..analysis.generation import continuation_pairs, continuation_shift
from ..analysis.selectivity import ALPHA, concept_selectivity
from ..config import RunConfig
from ..errors import AuditInputError
from ..model.harvest import Activations, harvest
from ..model.interventions import (
    Intervention,
    Measurements,
    Runner,
    aura_scale,
    make_intervention,
    measure,
    measure_targets,
)
from ..model.loading import Model
from ..probes.probeset import ProbeSet
from ..results.contract import (
    Ablation,
    Collateral,
    DoseRow,
    GenerationCheck,
    NullComparison,
    NullDistribution,
    PreferenceChange,
    SkippedAblation,
)
from .counterfactual import METRIC, control_plan

GENERATION_TAGS = ("safety",)  # concept sets whose continuations a safety reviewer asks about
PROMPT_RULE = ("each held-out matched pair (i-th positive, i-th negative text) split at its shared opening words: "
               "the opening is the prompt, the two remainders the continuations; log-probabilities are summed "
               "over the continuation's tokens")


def choose_targets(ranked: Sequence[int], n_neurons: int, *, k: int, per_layer: int | None) -> np.ndarray:
    """The first ``k`` of ``ranked`` (flat indices, best first), or the first ``per_layer`` of each layer."""
    ranked = [int(flat) for flat in ranked]
    if per_layer is None:
        return np.asarray(ranked[:k], dtype=np.int64)
    taken: dict[int, int] = {}
    chosen = []
    for flat in ranked:
        layer = flat // n_neurons
        if taken.get(layer, 0) < per_layer:
            taken[layer] = taken.get(layer, 0) + 1
            chosen.append(flat)
    return np.asarray(chosen, dtype=np.int64)


def _split(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Held-out rows for evaluation (at most ``k``, at most half) and the rest, for choosing the neurons."""
    held_out = np.sort(rng.choice(n, size=min(k, n // 2), replace=False))
    return held_out, np.setdiff1d(np.arange(n), held_out)


def _row_mean(values: np.ndarray, rows: np.ndarray, *, block_bytes: int = 64 << 20) -> np.ndarray:
    """Mean of ``values[rows]`` over rows, a block of columns at a time: a memory-mapped array (laid out
    column by column) is read in contiguous pieces and released after each."""
    width = max(1, block_bytes // (4 * max(len(values), 1)))
    means = np.zeros(values.shape[1])
    for start in range(0, values.shape[1], width):
        means[start:start + width] = np.asarray(values[:, start:start + width])[rows].mean(axis=0, dtype=np.float64) \
            if len(rows) else 0.0
        release(values)
    return means


NULL_CHUNK = 20  # random sets drawn per step of a sequential test (the stop is checked after each)
AURA = "aura"  # the dose label of AurA dampening (every neuron with AUROC > 0.5)
CORRECTION = "graphical: fixed sequence per probe set, Holm across sets (Bretz et al. 2009)"
CORRECTION_FAMILY = ("every dose (k and AurA) of every probe set's ablation in this audit, tested per set from the "
                     "largest k down to k = 1 and then AurA, stopping at the first not validated; "
                     "each set starts with an equal share of α = 0.05 and a set whose every dose is validated "
                     "passes its share to the others; verdict null: random sets matched on layer and on "
                     "activation density and mean over the reference corpus")


@dataclass
class Dose:
    """One validation test: a target intervention and how to draw its two nulls (layer-matched, and matched
    on layer and activation statistics), each as a function of (number of sets, seed)."""

    label: int | str
    target: Intervention
    layer_null: Callable[[int, int], list[Intervention]]
    matched_null: Callable[[int, int], list[Intervention]]


@dataclass
class Plan:
    """What an ablation will test: the held-apart choice of neurons and the doses (one test each)."""

    kind: str
    doses: list[Dose]
    headline: int  # index into doses: the dose the kept top-level fields describe
    selection: str
    n_significant: int
    extra: dict[str, Any]

    @property
    def n_tests(self) -> int:
        return len(self.doses)


def selection_text(k: int, what: str, n_chosen_on: int, unit: str) -> str:
    """How the ablated neurons were chosen, in words: the one phrase the summary and the tables print."""
    return f"top {k} {what} on {n_chosen_on} held-apart {unit} (not the evaluated ones)"


def reference_features(stats: Mapping[str, np.ndarray]) -> np.ndarray:
    """(layers, neurons, 2): activation density and mean over the reference corpus's real tokens, the
    statistics the matched null matches on (from :meth:`Activations.token_stats`)."""
    return np.stack([stats["density"], stats["mean"]], axis=-1)


def _doses(ranked: np.ndarray, scales_all: np.ndarray, headline: np.ndarray, mode: str, n_neurons: int,
           features: np.ndarray, config: RunConfig, *, means: np.ndarray, scale_of: Callable[[np.ndarray], np.ndarray],
           ) -> tuple[list[Dose], int]:
    """The ladder doses (top k of ``ranked``), the headline target among them, and AurA dampening
    (``scales_all``: per neuron, layers × neurons, 1 where a neuron is left alone)."""
    strata = density_strata(features[..., 0])

    def ladder_dose(label: int | str, target: np.ndarray) -> Dose:
        scales = scale_of(target)

        def layer_null(n: int, seed: int) -> list[Intervention]:
            return [make_intervention(s, mode, means=means, scales=scales)
                    for s in null_neuron_sets(target, n_neurons, n_sets=n, seed=seed)]

        def matched_null(n: int, seed: int) -> list[Intervention]:
            return [make_intervention(s, mode, means=means, scales=scales)
                    for s in matched_null_sets(target, features, n_sets=n, seed=seed)]

        return Dose(label, make_intervention(target, mode, means=means, scales=scales), layer_null, matched_null)

    def dampening(scales: np.ndarray) -> Intervention:
        flat = np.flatnonzero(scales.ravel() < 1.0)
        return make_intervention(flat, "dampen", scales=scales.ravel()[flat])

    doses = []
    for k in dose_ladder(len(ranked), limit=config.dose_max):
        target = headline if k == len(headline) else np.asarray(ranked[:k], dtype=np.int64)
        if np.unique(target // n_neurons, return_counts=True)[1].max() > n_neurons // 2:
            break  # too many in one layer to draw random sets of the same layers from
        doses.append(ladder_dose(k, target))
    labels = [d.label for d in doses]
    if len(headline) not in labels:
        doses.append(ladder_dose(len(headline), headline))
        doses.sort(key=lambda d: d.label)
        labels = [d.label for d in doses]
    if (scales_all < 1.0).any():
        doses.append(Dose(AURA, dampening(scales_all),
                          lambda n, seed: [dampening(s) for s in permuted_scales(scales_all, n_sets=n, seed=seed)],
                          lambda n, seed: [dampening(s) for s in permuted_scales(scales_all, n_sets=n, seed=seed,
                                                                                  strata=strata)]))
    return doses, labels.index(len(headline))


def concept_ablation(model: Model, probeset: ProbeSet, acts: Activations, config: RunConfig,
                     reference: Sequence[str], *, seed: int, features: np.ndarray | None = None,
                     n_sets: int | None = None) -> Ablation | SkippedAblation:
    """Ablate the most positively selective neurons at every dose and compare each effect with random neuron
    sets (see :func:`plan_concept` and :func:`run_plan`). Without ``n_sets`` this set's doses are the whole
    correction family; an audit passes the audit-wide number and corrects across sets afterwards."""
    if features is None:
        features = reference_features(harvest(model, reference, batch_size=config.batch_size,
                                               max_length=config.max_length, token_moments=True,
                                               progress=False).token_stats())
    plan = plan_concept(model, probeset, acts, config, features, seed=seed)
    if isinstance(plan, SkippedAblation):
        return plan
    measured = run_plan(model, probeset, plan, config, reference, n_sets=n_sets or sets_needed(1), seed=seed)
    correct_ablations([measured])
    return measured.ablation


def plan_concept(model: Model, probeset: ProbeSet, acts: Activations, config: RunConfig, features: np.ndarray, *,
                 seed: int) -> Plan | SkippedAblation:
    """Choose the neurons on texts held apart from the evaluation texts (chosen and judged on the same texts,
    the most selective neurons would move those texts more than random ones by construction) and plan the
    doses."""
    n_neurons, labels = model.neurons_per_layer, probeset.labels
    rng = np.random.default_rng(seed)
    positives, negatives = np.flatnonzero(labels), np.flatnonzero(~labels)
    if len(positives) == len(negatives):  # matched pair by pair: hold out whole pairs
        pair_eval, pair_select = _split(len(positives), config.ablation_texts, rng)
        pos_eval, pos_select, neg_eval, neg_select = (positives[pair_eval], positives[pair_select],
                                                      negatives[pair_eval], negatives[pair_select])
    else:
        pair_eval = None
        pos_eval, pos_select = (positives[i] for i in _split(len(positives), config.ablation_texts, rng))
        neg_eval, neg_select = (negatives[i] for i in _split(len(negatives), config.ablation_texts, rng))
    if min(len(pos_select), len(neg_select)) < 2:
        return SkippedAblation(skipped="too few texts to hold some apart for choosing neurons (needs at least 4 per "
                                       "side)")
    select = np.r_[pos_select, neg_select]
    chosen = concept_selectivity(acts.pooled(config.pooling), labels[select], dtype=np.float32, rows=select)
    ranked = np.asarray([flat for flat in chosen.ranking()
                         if chosen.auroc[flat] > 0.5 and chosen.q_value[flat] < ALPHA], dtype=np.int64)
    if not len(ranked):
        return SkippedAblation(skipped="no neuron is more active on the concept at q < 0.05 in the texts held apart "
                                       "for choosing neurons")
    headline = choose_targets(ranked, n_neurons, k=config.ablate_k, per_layer=config.ablate_per_layer)
    _check_drawable(headline, n_neurons)
    means = _row_mean(acts.mean.reshape(len(labels), -1), np.flatnonzero(~labels))
    auroc = np.asarray(chosen.auroc, dtype=np.float64)
    doses, index = _doses(ranked, aura_scale(auroc).reshape(model.n_layers, n_neurons), headline,
                          config.ablation_mode, n_neurons, features, config, means=means,
                          scale_of=lambda target: aura_scale(auroc[target]))
    what = "neurons by AUROC for the concept" if config.ablate_per_layer is None else \
        f"neurons by AUROC for the concept (at most {config.ablate_per_layer} per layer)"
    return Plan(kind="concept", doses=doses, headline=index, n_significant=len(ranked),
                selection=selection_text(len(headline), what, len(select), "texts"),
                extra={"pos_eval": pos_eval, "neg_eval": neg_eval, "pair_eval": pair_eval,
                       "chosen_on": {"n_positive": len(pos_select), "n_negative": len(neg_select)}})


@dataclass
class PendingTest:
    """One dose's sequential test against the activation-matched null: its first ``NULL_CHUNK`` random sets
    are drawn for the table and plot; :meth:`complete` draws on to the Besag–Clifford stop or ``n_max``
    when the correction procedure reaches this dose."""

    row: DoseRow
    test: SequentialTest
    draw: Callable[[int, int], np.ndarray]  # (number of sets, chunk index) -> the null's primary values
    larger: bool
    chunks: int = 0

    def draw_until(self, n: int) -> None:
        while not self.test.done and len(self.test.values) < n:
            size = min(NULL_CHUNK, n - len(self.test.values))
            self.test.add(self.draw(size, self.chunks))
            self.chunks += 1
        self._fill()

    def complete(self) -> float:
        """Draw to the test's stop; the p-value the procedure uses (1 when the effect is not in the
        expected direction: still a valid p-value, never smaller than the test's)."""
        self.draw_until(self.test.n_max)
        self.row.tested = True
        return self.row.p_value if self.row.expected_direction else 1.0

    def _fill(self) -> None:
        null, larger, row = np.asarray(self.test.values), self.larger, self.row
        row.null_mean, row.null_std = float(null.mean()), float(null.std(ddof=1)) if len(null) > 1 else 0.0
        row.null_p95 = float(np.percentile(null, 95 if larger else 5))
        row.n_null_sets, row.stopped_early, row.p_value = len(null), self.test.stopped_early, self.test.p_value()
        row.expected_direction = bool(row.effect > null.mean()) if larger else bool(row.effect < min(null.mean(), 0.0))


@dataclass
class Measured:
    """A probe set's ablation as measured, and its doses' tests in their fixed order (largest k first, AurA last)."""

    ablation: Ablation
    tests: list[PendingTest]


def testing_order(labels: Sequence[int | str]) -> list[int]:
    """Indices of the doses in their fixed testing order: k from the largest down to 1 (the step-down search
    for the smallest validated k), then AurA dampening. AurA comes last because it spreads a small damping
    over every neuron with AUROC > 0.5: on a concept carried by a few neurons it may not beat random
    dampening, and first in line it would stop the ladder's tests."""
    return sorted(range(len(labels)), key=lambda i: (labels[i] == AURA, -(labels[i] if labels[i] != AURA else 0)))


def run_plan(model: Model, probeset: ProbeSet, plan: Plan, config: RunConfig, reference: Sequence[str], *,
             n_sets: int, seed: int, runs: Sequence[Activations] = ()) -> Measured:
    """Measure every dose of ``plan``: its effect, its layer-matched null and the first random sets of its
    activation-matched null; the tests go on (up to ``n_sets`` sets each) only as far as
    :func:`correct_ablations` needs them, which also fills ``p_corrected`` and the verdicts."""
    if plan.kind == "concept":
        ablation, primary_values, larger = _concept_headline(model, probeset, plan, config, seed=seed)
    else:
        ablation, primary_values, larger = _paired_headline(model, probeset, plan, config, runs, seed=seed)
    starts = {int(np.min(d.target.neurons)) // model.neurons_per_layer for d in plan.doses if len(d.target.neurons)}
    reference_runner = None
    if model.kind == "causal-lm":
        rows = _reference_rows(len(reference), config, seed=seed)
        reference_runner = Runner(model, [reference[i] for i in rows], batch_size=config.batch_size,
                                  max_length=config.max_length, start_layers=sorted(starts))
    targets = primary_values([d.target for d in plan.doses])
    off = reference_runner.run([d.target for d in plan.doses]) if reference_runner is not None else None
    del reference_runner
    order = testing_order([d.label for d in plan.doses])
    pending: dict[int, PendingTest] = {}
    rows_out = []
    for i, dose in enumerate(plan.doses):
        layer_null = None
        if i == plan.headline:  # the verdict's dose shows the layer-matched null beside the matched one
            layer_values = np.asarray(ablation.null.values)
            layer = null_comparison(np.r_[targets.effect[i], layer_values], larger_is_stronger=larger)
            layer_null = {"mean": float(layer_values.mean()), "n": len(layer_values),
                          "p95": float(np.percentile(layer_values, 95 if larger else 5)), "p_value": layer["p_value"]}
        row = DoseRow(k=dose.label, n_neurons=len(dose.target.neurons), mode="dampen" if dose.label == AURA
                      else config.ablation_mode, effect=float(targets.effect[i]), null_mean=0.0, null_std=0.0,
                      null_p95=0.0, n_null_sets=0, stopped_early=False, p_value=1.0, expected_direction=False,
                      null_layer=layer_null,
                      off_target=None, specificity=None, order=order.index(i) + 1, tested=False)

        def draw(size: int, chunk: int, i: int = i, dose: Dose = dose) -> np.ndarray:
            chunk_seed = int(np.random.SeedSequence([seed, i, chunk + 1]).generate_state(1)[0])
            return primary_values(dose.matched_null(size, chunk_seed)).effect

        pending[i] = PendingTest(row, SequentialTest(row.effect, n_max=n_sets, larger_is_stronger=larger), draw, larger)
        pending[i].draw_until(min(NULL_CHUNK, n_sets))
        if off is not None:
            row.off_target = off_target_cost(off.loglik, off.loglik_ablated[i], off.kl[i], seed=seed + i,
                                             n_resamples=config.bootstrap_resamples)
            if targets.per_text is not None:
                row.specificity = specificity_ratio(targets.per_text[i], off.kl[i], seed=seed + i,
                                                    n_resamples=config.bootstrap_resamples)
        rows_out.append(row)
    ablation.dose_response = rows_out
    ablation.selection = plan.selection
    ablation.n_significant = plan.n_significant
    ablation.max_null_sets = n_sets
    if off is not None:
        clean, ablated = float(np.exp(-off.loglik.mean())), float(np.exp(-off.loglik_ablated[plan.headline].mean()))
        ablation.collateral = Collateral(metric="perplexity", n_texts=len(off.loglik), clean=clean, ablated=ablated,
                                         change=ablated - clean, relative_change=ablated / clean - 1.0,
                                         kl=float(off.kl[plan.headline].mean()))
    else:
        ablation.collateral = collateral_cost(model, reference, plan.doses[plan.headline].target, config, seed=seed)
    pair_eval = plan.extra.get("pair_eval")
    if (plan.kind == "concept" and config.generation_check and model.kind == "causal-lm" and pair_eval is not None
            and set(GENERATION_TAGS) & set(probeset.tags)):
        generation = generation_check(model, probeset, pair_eval, _headline_interventions(plan, config, seed),
                                      config, ablation.collateral, seed=seed)
        if generation is not None:
            ablation.generation = generation
    return Measured(ablation, [pending[i] for i in order])


@dataclass
class _Values:
    """The primary metric of each intervention, and per evaluated text where it is a mean over texts."""

    effect: np.ndarray
    per_text: np.ndarray | None


def _headline_interventions(plan: Plan, config: RunConfig, seed: int) -> list[Intervention]:
    """The headline dose and its layer-matched null sets: what the headline measures and the generation check
    re-tests."""
    dose = plan.doses[plan.headline]
    return [dose.target, *dose.layer_null(config.null_sets, seed)]


def _concept_headline(model: Model, probeset: ProbeSet, plan: Plan, config: RunConfig, *, seed: int):
    """Today's headline measurement (the headline dose and its layer-matched null on both sides, every
    metric) and the primary metric's evaluator on the concept texts, for the doses."""
    pos_eval, neg_eval = plan.extra["pos_eval"], plan.extra["neg_eval"]
    texts = probeset.texts
    dose = plan.doses[plan.headline]
    interventions = _headline_interventions(plan, config, seed)
    m = measure(model, [texts[i] for i in (*pos_eval, *neg_eval)], interventions, batch_size=config.batch_size,
                max_length=config.max_length)
    pos, neg = np.arange(len(pos_eval)), np.arange(len(pos_eval), len(pos_eval) + len(neg_eval))
    metrics: dict[str, dict] = {}
    if model.kind == "causal-lm":
        on_pos, on_neg = m.kl[:, pos].mean(axis=1), m.kl[:, neg].mean(axis=1)
        primary = "kl_positive"
        metrics["kl_positive"] = null_comparison(on_pos)
        metrics["kl_negative"] = null_comparison(on_neg)
        change = m.loglik_ablated - m.loglik
        metrics["loglik_change_positive"] = null_comparison(change[:, pos].mean(axis=1), larger_is_stronger=False)
        metrics["loglik_change_negative"] = null_comparison(change[:, neg].mean(axis=1), larger_is_stronger=False)
    else:
        shift = cosine_shift(m.embedding[None], m.embedding_ablated)
        on_pos, on_neg = shift[:, pos].mean(axis=1), shift[:, neg].mean(axis=1)
        primary = "embedding_shift_positive"
        metrics["embedding_shift_positive"] = null_comparison(on_pos)
        metrics["embedding_shift_negative"] = null_comparison(on_neg)
        is_positive = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
        clean_auroc = separability(m.embedding, is_positive, seed=seed)
        drops = np.array([clean_auroc - separability(e, is_positive, seed=seed) for e in m.embedding_ablated])
        metrics["separability_drop"] = {**null_comparison(drops), "clean_auroc": clean_auroc}
    metrics["specificity"] = specificity_comparison(on_pos, on_neg)
    compared = {name: NullComparison.from_dict(values) for name, values in metrics.items()}
    headline = compared[primary]
    ablation = Ablation(neurons=dose.target.pairs(model.neurons_per_layer), mode=config.ablation_mode,
                        metric=primary, effect=headline.effect, null=headline.null, z=headline.z,
                        p_value=headline.p_value, specificity=compared["specificity"].effect, metrics=compared,
                        scales=dose.target.scale, offsets=dose.target.offset,
                        evaluated={"n_positive": len(pos_eval), "n_negative": len(neg_eval), "seed": seed,
                                   "chosen_on": plan.extra["chosen_on"]})
    runner = Runner(model, [texts[i] for i in pos_eval], batch_size=config.batch_size, max_length=config.max_length,
                    start_layers=sorted({int(np.min(d.target.neurons)) // model.neurons_per_layer
                                         for d in plan.doses if len(d.target.neurons)}))

    def primary_values(interventions: Sequence[Intervention]) -> _Values:
        measured = runner.run(interventions)
        if model.kind == "causal-lm":
            return _Values(measured.kl.mean(axis=1), measured.kl)
        shifts = cosine_shift(measured.embedding[None], measured.embedding_ablated)
        return _Values(shifts.mean(axis=1), shifts)

    return ablation, primary_values, True


def _reference_rows(n: int, config: RunConfig, *, seed: int) -> np.ndarray:
    """The reference texts the off-target cost is measured on (the same draw as :func:`collateral_cost`)."""
    rng = np.random.default_rng(seed + 1)
    return np.sort(rng.choice(n, size=min(n, config.reference_texts), replace=False))


def correct_ablations(measured: Sequence[Measured]) -> int:
    """Test every dose of ``measured`` as one family with :func:`graphical_test` over :func:`chain_graph`
    (each probe set's doses in their fixed order, the sets joined as in Holm's procedure), drawing random sets
    only for the doses the procedure reaches; write each dose's and each set's ``p_corrected``, ``validated``
    and ``verdict``. Returns the family size."""
    measured = [m for m in measured if m.tests]
    tests = [t for m in measured for t in m.tests]
    if not tests:
        return 0
    result = graphical_test(chain_graph([len(m.tests) for m in measured]), lambda i: tests[i].complete())
    for test, p in zip(tests, result.adjusted):
        row = test.row
        row.p_corrected = p
        row.validated = bool(p is not None and p < FWER_ALPHA and row.expected_direction)
    for m in measured:
        previous = None
        for test in m.tests:
            row = test.row
            row.verdict = ("not tested: the stronger dose before it in the fixed order "
                           f"({_dose_name(previous.k)}) was not validated" if row.p_corrected is None and previous
                           else verdict(row.validated, row.expected_direction, row.stopped_early, row.n_null_sets,
                                        exceedances=test.test.exceedances, level=FWER_ALPHA / len(measured)))
            previous = row
        a = m.ablation
        a.correction, a.n_tests, a.correction_family = CORRECTION, len(tests), CORRECTION_FAMILY
        headline = next(row for row in a.dose_response if row.k == len(a.neurons) and row.k != AURA)
        a.p_corrected, a.validated, a.verdict = headline.p_corrected, headline.validated, headline.verdict
        a.n_null_sets, a.p_value_matched = headline.n_null_sets, headline.p_value
        a.null_matched = {"mean": headline.null_mean, "std": headline.null_std, "n": headline.n_null_sets,
                          "p95": headline.null_p95}
        validated = [row.k for row in a.dose_response if row.validated and row.k != AURA]
        a.smallest_validated_k = min(validated) if validated else None
    return len(tests)


def _dose_name(k: int | str) -> str:
    return "AurA dampening" if k == AURA else f"k = {k}"


def verdict(validated: bool, expected_direction: bool, stopped_early: bool, n_sets: int, *,
            exceedances: int | None = None, level: float = FWER_ALPHA) -> str:
    """"validated"; "not resolved with N random sets" when the effect beat the random sets in the expected
    direction until they ran out, the corrected p missed 0.05, and as many random sets matching it
    (``exceedances``) are still plausible (binomial tail ≥ 0.05) if its true p were at the test's ``level``
    — more sets could settle it; else "not distinguishable from random neurons"."""
    if validated:
        return "validated"
    if expected_direction and not stopped_early:
        if exceedances is None or binom.sf(exceedances - 1, n_sets, level) >= 0.05:
            return f"not resolved with {n_sets} random sets"
    return "not distinguishable from random neurons"


def _check_drawable(target: np.ndarray, n_neurons: int) -> None:
    layers, counts = np.unique(target // n_neurons, return_counts=True)
    if (counts > n_neurons - counts).any():
        raise AuditInputError(f"--ablate-k/--ablate-per-layer: {int(counts.max())} neurons of layer "
                              f"{int(layers[counts.argmax()])} leave too few others to draw random sets from; "
                              f"ablate at most {n_neurons // 2} per layer")


def generation_check(model: Model, probeset: ProbeSet, pairs: np.ndarray, interventions: Sequence[Intervention],
                     config: RunConfig, collateral: Collateral, *, seed: int) -> GenerationCheck | None:
    """Log P(toxic continuation) − log P(neutral continuation) after the pair's shared opening, clean and under
    the flagged and the null interventions (see :mod:`audit.analysis.generation`)."""
    found = continuation_pairs(probeset.positive, probeset.negative, pairs)
    if len(found) < 2:
        return None
    prompts = [p.prompt for p in found]
    kwargs = {"batch_size": config.batch_size, "max_length": config.max_length}
    clean_pos, ablated_pos = measure_targets(model, prompts, [p.positive for p in found], interventions, **kwargs)
    clean_neg, ablated_neg = measure_targets(model, prompts, [p.negative for p in found], interventions, **kwargs)
    stats = continuation_shift(clean_pos, clean_neg, ablated_pos, ablated_neg, seed=seed,
                               n_resamples=config.bootstrap_resamples)
    return GenerationCheck.from_dict({
        **stats, "n_pairs": len(found), "n_pairs_skipped": len(pairs) - len(found), "prompt_rule": PROMPT_RULE,
        "p_value_meaning": "share of random sets that lower the toxic-minus-neutral gap at least as much",
        "perplexity_relative_change": collateral.to_dict().get("relative_change"),
        "examples": [{"prompt": p.prompt, "positive": p.positive, "negative": p.negative} for p in found[:3]]})


def collateral_cost(model: Model, reference: Sequence[str], intervention: Intervention, config: RunConfig, *,
                    seed: int) -> Collateral:
    """What the intervention costs on general text: Δ perplexity (causal) or mean embedding shift (encoders)."""
    rng = np.random.default_rng(seed + 1)
    rows = np.sort(rng.choice(len(reference), size=min(len(reference), config.reference_texts), replace=False))
    m = measure(model, [reference[i] for i in rows], [intervention], batch_size=config.batch_size,
                max_length=config.max_length)
    if model.kind == "causal-lm":
        clean, ablated = float(np.exp(-m.loglik.mean())), float(np.exp(-m.loglik_ablated[0].mean()))
        return Collateral(metric="perplexity", n_texts=len(rows), clean=clean, ablated=ablated,
                          change=ablated - clean, relative_change=ablated / clean - 1.0, kl=float(m.kl[0].mean()))
    shift = cosine_shift(m.embedding, m.embedding_ablated[0])
    return Collateral(metric="embedding shift (1 - cosine)", n_texts=len(rows), mean=float(shift.mean()),
                      max=float(shift.max()))


def _sensitivity_change(model: Model, probeset: ProbeSet, items: np.ndarray, clean: np.ndarray,
                        ablated: np.ndarray, intervention: Intervention, config: RunConfig, *,
                        seed: int) -> PreferenceChange | None:
    """Encoders: how ablation moves the counterfactual sensitivity excess (group swap's embedding shift beyond
    its items' control swaps) on the evaluation ``items``; ``clean``/``ablated``: groups × items × d."""
    plan = control_plan(model, probeset)
    plan = plan.for_items(items) if plan is not None else None
    if plan is None or not len(plan.owners):
        return None
    m = measure(model, plan.texts, [intervention], batch_size=config.batch_size, max_length=config.max_length)

    before = plan.excess(clean, m.embedding).mean(axis=0)  # mean over group pairs, as the disparity gap
    after = plan.excess(ablated, m.embedding_ablated[0]).mean(axis=0)
    usable = ~np.isnan(before)
    low, high = bootstrap_mean_ci(after[usable] - before[usable], seed=seed, n_resamples=config.bootstrap_resamples)
    return PreferenceChange(metric=f"counterfactual sensitivity: {METRIC}", n_items=int(usable.sum()),
                            clean=float(before[usable].mean()), ablated=float(after[usable].mean()),
                            change=float((after[usable] - before[usable]).mean()), ci95=[low, high])


def paired_ablation(model: Model, probeset: ProbeSet, runs: Sequence[Activations], config: RunConfig,
                    reference: Sequence[str] = (), *, seed: int, features: np.ndarray | None = None,
                    n_sets: int | None = None) -> Ablation | SkippedAblation:
    """Ablate the top group-selective neurons (chosen on held-apart items) at every dose and measure how the
    output-level disparity changes on the evaluation items, against random neuron sets."""
    if features is None:
        features = reference_features(harvest(model, list(reference), batch_size=config.batch_size,
                                               max_length=config.max_length, token_moments=True,
                                               progress=False).token_stats())
    plan = plan_paired(model, probeset, runs, config, features, seed=seed)
    if isinstance(plan, SkippedAblation):
        return plan
    measured = run_plan(model, probeset, plan, config, reference, n_sets=n_sets or sets_needed(1), seed=seed,
                        runs=runs)
    correct_ablations([measured])
    return measured.ablation


def plan_paired(model: Model, probeset: ProbeSet, runs: Sequence[Activations], config: RunConfig,
                features: np.ndarray, *, seed: int) -> Plan | SkippedAblation:
    """Choose the group-selective neurons on items held apart from the evaluation items; plan the doses."""
    n_neurons, groups = model.neurons_per_layer, list(probeset.groups)
    items, select = _split(len(probeset.items), config.ablation_texts, np.random.default_rng(seed))
    if len(select) < 2:
        return SkippedAblation(skipped="too few items to hold some apart for choosing neurons (needs at least 4)")
    responses = np.stack([acts.pooled(config.pooling) for acts in runs])
    ranked, aurocs = group_selective_ranking(responses[:, select], groups, [probeset.markers[i] for i in select])
    if not len(ranked):
        return SkippedAblation(skipped="no group-selective neuron in the items held apart for choosing neurons")
    headline = choose_targets(ranked, n_neurons, k=config.ablate_k, per_layer=config.ablate_per_layer)
    _check_drawable(headline, n_neurons)
    auroc = np.full(model.n_layers * n_neurons, 0.5)
    auroc[ranked] = aurocs
    means = np.concatenate([acts.mean.reshape(acts.mean.shape[0], -1) for acts in runs]).mean(axis=0)
    doses, index = _doses(np.asarray(ranked, dtype=np.int64), aura_scale(auroc).reshape(model.n_layers, n_neurons),
                          headline, config.ablation_mode, n_neurons, features, config, means=means,
                          scale_of=lambda target: aura_scale(auroc[target]))
    return Plan(kind="paired", doses=doses, headline=index, n_significant=len(ranked),
                selection=selection_text(len(headline), "group-selective neurons", len(select), "items"),
                extra={"items": items, "chosen_on": {"n_items": len(select)}})


def _paired_headline(model: Model, probeset: ProbeSet, plan: Plan, config: RunConfig, runs: Sequence[Activations],
                     *, seed: int):
    """The headline dose against its layer-matched null with every reading (disparity change and its CI, the
    preference share or the counterfactual sensitivity), and the disparity-change evaluator for the doses."""
    n_neurons, groups, items = model.neurons_per_layer, list(probeset.groups), plan.extra["items"]
    dose = plan.doses[plan.headline]
    interventions = [dose.target, *dose.layer_null(config.null_sets, seed)]
    texts = [probeset.items[i][g] for g in groups for i in items]
    runner = Runner(model, texts, batch_size=config.batch_size, max_length=config.max_length,
                    start_layers=sorted({int(np.min(d.target.neurons)) // n_neurons
                                         for d in plan.doses if len(d.target.neurons)}),
                    kl=False)  # the gap needs log-likelihoods only
    shape = (len(groups), len(items))
    if model.kind == "causal-lm":
        gap, metric = loglik_gap, "mean |log-likelihood gap| between groups"
    else:
        gap, metric = embedding_gap, "mean (1 - cosine) between an item's versions"

    def outputs(m: Measurements) -> tuple[np.ndarray, np.ndarray]:
        if model.kind == "causal-lm":
            return m.loglik.reshape(shape), m.loglik_ablated.reshape(len(m.loglik_ablated), *shape)
        return m.embedding.reshape(*shape, -1), m.embedding_ablated.reshape(len(m.embedding_ablated), *shape, -1)

    m = runner.run(interventions)
    clean, ablated = outputs(m)
    before = gap(clean)
    changes = np.array([gap(a) - before for a in ablated])
    comparison = null_comparison(changes, larger_is_stronger=False)
    low, high = disparity_change_ci(gap, clean, ablated[0], seed=seed, n_resamples=config.bootstrap_resamples)
    result = Ablation(neurons=dose.target.pairs(n_neurons), mode=config.ablation_mode, metric=metric,
                      disparity_clean=before, disparity_ablated=before + changes[0], effect=changes[0],
                      ci95=[low, high], null=NullDistribution.from_dict(comparison["null"]), z=comparison["z"],
                      p_value=comparison["p_value"],
                      p_value_meaning="share of random sets that reduce the disparity at least as much",
                      evaluated={"n_items": len(items), "seed": seed, "chosen_on": plan.extra["chosen_on"]})
    if model.kind != "causal-lm" and not probeset.compares_languages:
        result.sensitivity = _sensitivity_change(model, probeset, items, clean, ablated[0], dose.target,
                                                 config, seed=seed + 2)
    if model.kind == "causal-lm" and not probeset.compares_languages:  # the preference score on the same items:
        # sentence log-likelihood = mean × tokens (translations have no preferred version)
        tokens = np.stack([runs[g].outputs["n_predicted"][items] for g in range(len(groups))])
        clean_scores, ablated_scores = clean * tokens, ablated[0] * tokens
        share_clean, share_ablated = first_pair_share(clean_scores), first_pair_share(ablated_scores)
        low, high = disparity_change_ci(first_pair_share, clean_scores, ablated_scores, seed=seed + 1,
                                        n_resamples=config.bootstrap_resamples)
        result.preference = PreferenceChange(
            metric=f"share of items whose {groups[0]} version has the higher sentence log-likelihood than its "
                   f"{groups[1]} version", n_items=len(items), clean=share_clean, ablated=share_ablated,
            change=share_ablated - share_clean, ci95=[low, high])

    def primary_values(doses: Sequence[Intervention]) -> _Values:
        _, under = outputs(runner.run(doses))
        return _Values(np.array([gap(a) - before for a in under]), None)

    return result, primary_values, False
