"""Validate flagged neurons by ablation: intervene on them, measure the model's outputs, and compare
with random neuron sets of the same size and per-layer counts."""

from __future__ import annotations

from typing import Sequence

import numpy as np

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
from ..analysis.preference import first_pair_share
from ..analysis.resident import release
from ..analysis.generation import continuation_pairs, continuation_shift
from ..analysis.selectivity import ALPHA, concept_selectivity
from ..config import RunConfig
from ..errors import AuditInputError
from ..model.harvest import Activations
from ..model.interventions import Intervention, aura_scale, make_intervention, measure, measure_targets
from ..model.loading import Model
from ..probes.probeset import ProbeSet
from ..results.contract import (
    Ablation,
    Collateral,
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


def _interventions(target: np.ndarray, mode: str, n_neurons: int, config: RunConfig, *, means: np.ndarray,
                   scales: np.ndarray, seed: int) -> list[Intervention]:
    """The target intervention first, then the null sets (same layers; dampen uses the target's scales)."""
    layers, counts = np.unique(target // n_neurons, return_counts=True)
    if (counts > n_neurons - counts).any():
        raise AuditInputError(f"--ablate-k/--ablate-per-layer: {int(counts.max())} neurons of layer "
                              f"{int(layers[counts.argmax()])} leave too few others to draw random sets from; "
                              f"ablate at most {n_neurons // 2} per layer")
    sets = [target, *null_neuron_sets(target, n_neurons, n_sets=config.null_sets, seed=seed)]
    return [make_intervention(neurons, mode, means=means, scales=scales) for neurons in sets]


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


def concept_ablation(model: Model, probeset: ProbeSet, acts: Activations, config: RunConfig,
                     reference: Sequence[str], *, seed: int) -> Ablation | SkippedAblation:
    """Ablate the most positively selective neurons and compare the effect with random neuron sets.

    The neurons are chosen on texts held apart from the evaluation texts: chosen and judged on the same
    texts, the most selective neurons would move those texts more than random ones by construction.
    """
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
    ranked = [flat for flat in chosen.ranking() if chosen.auroc[flat] > 0.5 and chosen.q_value[flat] < ALPHA]
    if not ranked:
        return SkippedAblation(skipped="no neuron is more active on the concept at q < 0.05 in the texts held apart "
                                       "for choosing neurons")
    target = choose_targets(ranked, n_neurons, k=config.ablate_k, per_layer=config.ablate_per_layer)
    means = _row_mean(acts.mean.reshape(len(labels), -1), np.flatnonzero(~labels))
    interventions = _interventions(target, config.ablation_mode, n_neurons, config, means=means,
                                   scales=aura_scale(chosen.auroc[target]), seed=seed)
    texts = probeset.texts
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
    collateral = collateral_cost(model, reference, interventions[0], config, seed=seed)
    generation = None
    if (config.generation_check and model.kind == "causal-lm" and pair_eval is not None
            and set(GENERATION_TAGS) & set(probeset.tags)):
        generation = generation_check(model, probeset, pair_eval, interventions, config, collateral, seed=seed)
    ablation = Ablation(neurons=interventions[0].pairs(n_neurons), mode=config.ablation_mode, metric=primary,
                        effect=headline.effect, null=headline.null, z=headline.z, p_value=headline.p_value,
                        specificity=compared["specificity"].effect, metrics=compared,
                        scales=interventions[0].scale, offsets=interventions[0].offset,
                        evaluated={"n_positive": len(pos_eval), "n_negative": len(neg_eval), "seed": seed,
                                   "chosen_on": {"n_positive": len(pos_select), "n_negative": len(neg_select)}},
                        collateral=collateral)
    if generation is not None:
        ablation.generation = generation
    return ablation


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


def paired_ablation(model: Model, probeset: ProbeSet, runs: Sequence[Activations], config: RunConfig, *,
                    seed: int) -> Ablation | SkippedAblation:
    """Ablate the top group-selective neurons (chosen on held-apart items) and measure how the output-level
    disparity changes on the evaluation items, against random neuron sets."""
    n_neurons, groups = model.neurons_per_layer, list(probeset.groups)
    items, select = _split(len(probeset.items), config.ablation_texts, np.random.default_rng(seed))
    if len(select) < 2:
        return SkippedAblation(skipped="too few items to hold some apart for choosing neurons (needs at least 4)")
    responses = np.stack([acts.pooled(config.pooling) for acts in runs])
    ranked, aurocs = group_selective_ranking(responses[:, select], groups, [probeset.markers[i] for i in select])
    if not len(ranked):
        return SkippedAblation(skipped="no group-selective neuron in the items held apart for choosing neurons")
    target = choose_targets(ranked, n_neurons, k=config.ablate_k, per_layer=config.ablate_per_layer)
    scale_of = dict(zip(ranked.tolist(), aurocs))
    means = np.concatenate([acts.mean.reshape(acts.mean.shape[0], -1) for acts in runs]).mean(axis=0)
    interventions = _interventions(target, config.ablation_mode, n_neurons, config, means=means,
                                   scales=aura_scale([scale_of[int(t)] for t in target]), seed=seed)
    texts = [probeset.items[i][g] for g in groups for i in items]
    m = measure(model, texts, interventions, batch_size=config.batch_size, max_length=config.max_length)
    shape = (len(groups), len(items))
    if model.kind == "causal-lm":
        gap, metric = loglik_gap, "mean |log-likelihood gap| between groups"
        clean = m.loglik.reshape(shape)
        ablated = m.loglik_ablated.reshape(len(interventions), *shape)
    else:
        gap, metric = embedding_gap, "mean (1 - cosine) between an item's versions"
        clean = m.embedding.reshape(*shape, -1)
        ablated = m.embedding_ablated.reshape(len(interventions), *shape, -1)
    before = gap(clean)
    changes = np.array([gap(a) - before for a in ablated])
    comparison = null_comparison(changes, larger_is_stronger=False)
    low, high = disparity_change_ci(gap, clean, ablated[0], seed=seed, n_resamples=config.bootstrap_resamples)
    result = Ablation(neurons=interventions[0].pairs(n_neurons), mode=config.ablation_mode, metric=metric,
                      disparity_clean=before, disparity_ablated=before + changes[0], effect=changes[0],
                      ci95=[low, high], null=NullDistribution.from_dict(comparison["null"]), z=comparison["z"],
                      p_value=comparison["p_value"],
                      p_value_meaning="share of random sets that reduce the disparity at least as much",
                      evaluated={"n_items": len(items), "seed": seed, "chosen_on": {"n_items": len(select)}})
    if model.kind != "causal-lm" and not probeset.compares_languages:
        result.sensitivity = _sensitivity_change(model, probeset, items, clean, ablated[0], interventions[0],
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
    return result
