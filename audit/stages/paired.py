"""The paired-set part of an audit: group-selective neurons, LAPE, and output-level disparity."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..analysis.ablation import cosine_shift
from ..analysis.disparity import (
    REST,
    consistency_table,
    contrast_differences,
    group_selectivity,
    marker_consistency,
    output_disparity_table,
    selective_counts,
)
from ..analysis.lape import lape
from ..analysis.selectivity import ALPHA
from ..config import RunConfig
from ..model.harvest import Activations
from ..model.loading import Model
from ..model.outputs import target_logprobs
from ..model.sites import neuron_name
from ..probes.probeset import ProbeSet
from ..results.contract import ABSENT, Disparity, DisparityCounts, GroupNeuron, Lape, OutputDisparity, PairedSection
from .concept import section_identity

LANGUAGE_TAGS = ("languages", "multilingual")
MIN_EFFECT = 0.5  # |d_z| a group-selective neuron must reach besides q < alpha (a medium paired effect)


def uses_lape(probeset: ProbeSet) -> bool:
    """Language-specific neuron analysis applies to paired sets whose groups are languages."""
    return any(tag in LANGUAGE_TAGS for tag in probeset.tags)


def paired_section(model: Model, probeset: ProbeSet, runs: Sequence[Activations], config: RunConfig, *,
                   seed: int) -> PairedSection:
    """Disparity results for one paired set, from one harvest per group (in group order)."""
    groups = list(probeset.groups)
    responses = np.stack([acts.pooled(config.pooling) for acts in runs])  # groups × items × neurons
    paired = group_selectivity(responses, groups)
    by_contrast: dict[str, list[GroupNeuron]] = {}
    by_group: dict[str, list[GroupNeuron]] = {}
    candidates: list[GroupNeuron] = []
    undefined: set[str] = set()
    for row, contrast in enumerate(paired.contrasts):
        differences = contrast_differences(responses, groups, contrast)
        markers = marker_consistency(differences, probeset.markers, min_effect=MIN_EFFECT)
        undefined.update(markers.undefined)
        context = (model, probeset, paired, markers, differences, row, contrast, config.top_k)
        by_contrast[contrast.label] = _top(np.abs(markers.robust_effect), *context)
        candidates += by_contrast[contrast.label]
        # each group's own list: neurons more active in it, from "g vs rest" (or the pair, with two groups)
        if contrast.b == REST or len(groups) == 2:
            by_group.setdefault(contrast.a, [e for e in _top(markers.robust_effect, *context) if e.selective])
        if len(groups) == 2:
            by_group.setdefault(contrast.b, [e for e in _top(-markers.robust_effect, *context) if e.selective])
    candidates.sort(key=lambda e: (-abs(e.robust_effect), -abs(e.effect), e.layer, e.neuron))
    strongest: dict[tuple[int, int], GroupNeuron] = {}
    for entry in candidates:  # one row per group-selective neuron: its strongest contrast
        if entry.selective:
            strongest.setdefault((entry.layer, entry.neuron), entry)
    candidates = list(strongest.values())
    disparity = Disparity(
        neurons=candidates[:config.top_k], by_contrast=by_contrast, by_group=by_group,
        counts=DisparityCounts.from_dict(selective_counts(paired, groups, model.n_layers, min_effect=MIN_EFFECT)),
        output=OutputDisparity.from_dict(output_disparity(model, probeset, runs, seed=seed,
                                                          n_resamples=config.bootstrap_resamples)))
    section = PairedSection(
        **section_identity(probeset, runs, config.pooling), alpha=ALPHA, min_effect=MIN_EFFECT,
        test="Wilcoxon signed-rank (paired, two-sided), Benjamini-Hochberg across all neurons x contrasts",
        contrasts=[c.label for c in paired.contrasts], markers=sorted({m for m in probeset.markers if m}),
        disparity=disparity)
    if undefined:
        section.undefined_markers = sorted(undefined)
    if uses_lape(probeset):
        section.lape = Lape.from_dict(lape_section(model, groups, runs, paired, config.top_k))
    return section


def _top(score: np.ndarray, model: Model, probeset: ProbeSet, paired, markers, differences: np.ndarray, row: int,
         contrast, k: int) -> list[GroupNeuron]:
    """Entries for the ``k`` neurons with the highest positive ``score`` (ties: larger |d_z|, lower index)."""
    order = np.lexsort((np.arange(score.size), -np.abs(paired.effect[row]), -score))
    return [_entry(model, probeset, paired, markers, differences, row, int(flat), contrast)
            for flat in order[:k] if score[flat] > 0]


def _entry(model: Model, probeset: ProbeSet, paired, markers, differences: np.ndarray, row: int, flat: int,
           contrast) -> GroupNeuron:
    layer, neuron = divmod(flat, model.neurons_per_layer)
    effect = float(paired.effect[row, flat])
    higher, lower = (contrast.a, contrast.b) if effect >= 0 else (contrast.b, contrast.a)
    auroc = float(paired.auroc[row, flat])
    item = int(np.argmax(np.abs(differences[:, flat])))
    example = {"item": item, "difference": float(differences[item, flat]),
               **({g: probeset.items[item][g] for g in (contrast.a, contrast.b) if g != REST})}
    q_value = float(paired.q_value[row, flat])
    return GroupNeuron(
        layer=layer, neuron=neuron, name=neuron_name(layer, neuron), contrast=contrast.label,
        group=higher, versus=lower, effect=abs(effect), selective=bool(q_value < ALPHA and abs(effect) >= MIN_EFFECT),
        auroc=auroc if effect >= 0 else 1.0 - auroc,
        p_value=float(paired.p_value[row, flat]), q_value=q_value,
        mean_difference=abs(float(paired.mean_difference[row, flat])),
        robust_effect=abs(float(markers.robust_effect[flat])),
        consistency=float(markers.consistency[flat]),
        marker_effects={kind: float(markers.effects[k, flat]) * (1 if effect >= 0 else -1)
                        for k, kind in enumerate(markers.markers)} if len(markers.markers) > 1 else {},
        largest_item_difference=example)


def lape_section(model: Model, groups: list[str], runs: Sequence[Activations], paired, top_k: int) -> dict:
    """Language-specific neurons by activation-probability entropy, with counts per language and layer."""
    probability = np.stack([acts.positive.reshape(-1) / max(acts.token_count, 1) for acts in runs])
    result = lape(probability)
    n_neurons = model.neurons_per_layer
    rest_rows = {c.a: i for i, c in enumerate(paired.contrasts) if c.b == REST}
    per_language = {}
    for g, group in enumerate(groups):
        chosen = np.flatnonzero(result.assigned[g])
        chosen = chosen[np.argsort(-result.probability[g, chosen], kind="stable")]
        row = rest_rows.get(group, 0)
        sign = 1.0 if group == paired.contrasts[row].a else -1.0
        neurons = []
        for flat in chosen[:top_k]:
            layer, neuron = divmod(int(flat), n_neurons)
            auroc = float(paired.auroc[row, flat]) if sign > 0 else 1.0 - float(paired.auroc[row, flat])
            neurons.append({"layer": layer, "neuron": neuron, "name": neuron_name(layer, neuron),
                            "probability": float(result.probability[g, flat]),
                            "probabilities": {h: float(result.probability[k, flat]) for k, h in enumerate(groups)},
                            "entropy": float(result.entropy[flat]), "auroc": auroc,
                            "auroc_contrast": paired.contrasts[row].label})
        per_language[group] = {"count": int(len(chosen)),
                               "per_layer": result.assigned[g].reshape(model.n_layers, n_neurons).sum(axis=1),
                               "neurons": neurons}
    return {"method": "LAPE (Tang et al. 2024): activation probability >= 95th percentile for some language and "
                      "entropy in the lowest 1%", "probability_threshold": result.probability_threshold,
            "entropy_threshold": result.entropy_threshold,
            "n_language_specific": int(result.assigned.any(axis=0).sum()), "per_language": per_language}


def output_disparity(model: Model, probeset: ProbeSet, runs: Sequence[Activations], *, seed: int,
                     n_resamples: int) -> dict[str, Any]:
    """Does the model's own output treat the groups differently? With bootstrap 95% CIs over items."""
    groups = list(probeset.groups)
    if model.kind == "causal-lm":
        loglik = np.stack([acts.outputs["loglik"] for acts in runs])
        table = output_disparity_table(loglik, groups, seed=seed, n_resamples=n_resamples)
        for row in table["per_group"].values():
            row["perplexity"] = float(np.exp(-row["value"]))
        for pair in table["pairs"]:
            pair["perplexity_ratio"] = float(np.exp(-pair["difference"]))
        result = {"metric": "mean log-likelihood per token", "table": table}
        if any(target is not None for target in probeset.targets):
            result["target"] = _target_disparity(model, probeset, seed=seed, n_resamples=n_resamples)
        return result
    embeddings = [acts.outputs["embedding"] for acts in runs]
    pairs = [(a, b) for i, a in enumerate(groups) for b in groups[i + 1:]]
    similarity = np.stack([1.0 - cosine_shift(embeddings[groups.index(a)], embeddings[groups.index(b)])
                           for a, b in pairs])
    return {"metric": "cosine between an item's pooled sentence embeddings across groups",
            "table": consistency_table(similarity, pairs, seed=seed, n_resamples=n_resamples)}


def _target_disparity(model: Model, probeset: ProbeSet, *, seed: int, n_resamples: int) -> dict[str, Any]:
    rows = [i for i, target in enumerate(probeset.targets) if target is not None]
    values = np.stack([target_logprobs(model, [probeset.items[i][g] for i in rows],
                                       [probeset.targets[i][g] for i in rows]) for g in probeset.groups])
    return {"metric": "log-probability of the item's target continuation", "n_items": len(rows),
            "table": output_disparity_table(values, list(probeset.groups), seed=seed + 7, n_resamples=n_resamples)}


def paired_caveats(section: PairedSection) -> list[str]:
    """What a reader must know before trusting this paired set's disparity numbers."""
    counts = section.disparity.counts
    name = section.name
    language = section.lape is not ABSENT
    difference = ("the texts differ in every token across languages" if language
                  else "items differ between groups in the swapped words")
    notes = [f"{name}: {difference}, so every neuron that reads the differing tokens differs consistently; "
             f"q-values alone flag {counts.q_only.any_group} neurons, {counts.q_and_effect.any_group} "
             f"also reach |d_z| >= {section.min_effect}. Neurons are ranked by standardised effect, not by "
             "p-value."]
    if len(section.markers) > 1:
        notes.append(f"{name}: items swap different kinds of marker ({', '.join(section.markers)}); the "
                     "ranking uses each neuron's weakest effect across them ('robust effect') and reports its "
                     "consistency, so a neuron that reads only one word (e.g. a pronoun) does not rank high.")
    if section.undefined_markers is not ABSENT and section.undefined_markers:
        notes.append(f"{name}: marker kinds {', '.join(section.undefined_markers)} hold fewer than 2 items, so their "
                     "paired effects are undefined (null in marker_effects) and left out of consistency; with fewer "
                     "than two defined kinds, consistency itself is null.")
    if language:
        notes.append(f"{name}: language-selective neurons may track script, subword statistics or the "
                     "tokenizer's vocabulary coverage rather than language as such; a model trained mostly on one "
                     "language shows this most.")
    return notes
