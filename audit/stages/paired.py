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
from ..analysis.lape import Lape as LapeResult
from ..analysis.preference import LM_EVAL_TIE, preference_table, stereoset_scores
from ..analysis.selectivity import ALPHA
from ..config import RunConfig
from ..model.harvest import Activations, token_traces
from ..model.loading import Model
from ..model.encoding import scoring_convention
from ..model.outputs import pseudo_loglik, target_logprobs
from ..model.sites import neuron_name
from ..probes.probeset import ProbeSet
from ..probes.language import check_languages
from ..results.contract import (
    ABSENT,
    Disparity,
    DisparityCounts,
    Exemplar,
    GroupNeuron,
    LanguageCheck,
    Lape,
    MarkerBreakdown,
    OutputDisparity,
    PairedSection,
)
from .concept import section_identity
from .counterfactual import counterfactual_sensitivity
from .languages import language_lape

SENTENCE_SCORE = ("sentence log-likelihood (sum over every token of the sentence, each given what precedes it, after "
                  "the model's prefix token); share of items whose first-group version the model finds strictly more "
                  "likely (lm-evaluation-harness's pct_stereotype: a tie counts 0)")
PSEUDO_SCORE = ("pseudo-log-likelihood of the tokens the versions share, each masked in turn (Nangia et al. 2020); "
                "share of items whose first-group version the model finds more likely")
MARKER_TOP = 5  # neurons listed per marker kind in the per-marker breakdown
MIN_EFFECT = 0.5  # |d_z| a group-selective neuron must reach besides q < alpha (a medium paired effect)


def uses_lape(probeset: ProbeSet) -> bool:
    """Language-specific neuron analysis applies to paired sets whose groups are languages."""
    return probeset.compares_languages


def paired_section(model: Model, probeset: ProbeSet, runs: Sequence[Activations], config: RunConfig, *,
                   seed: int, lape_result: LapeResult | None = None) -> PairedSection:
    """Disparity results for one paired set, from one harvest per group (in group order). Language sets
    also get LAPE (``lape_result``, computed here when not given)."""
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
        # every group-selective neuron is a candidate for the overall table, so its rows agree with the counts
        selective = (paired.q_value[row] < ALPHA) & (np.abs(paired.effect[row]) >= MIN_EFFECT)
        candidates += _top(np.where(selective, np.abs(markers.robust_effect) + 1.0, 0.0), *context)
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
    kinds = sorted({m for m in probeset.markers if m})
    if len(kinds) > 1:
        disparity.by_marker = {kind: _marker_breakdown(model, probeset, responses, kind, disparity.output,
                                                       top_k=min(config.top_k, MARKER_TOP)) for kind in kinds}
    for entry in disparity.neurons:
        entry.exemplars = item_contexts(model, probeset, responses, entry, k=min(config.n_exemplars, 3),
                                        max_length=runs[0].max_length)
    section = PairedSection(
        **section_identity(probeset, runs, config.pooling), alpha=ALPHA, min_effect=MIN_EFFECT,
        test="Wilcoxon signed-rank (paired, two-sided), Benjamini-Hochberg across all neurons x contrasts",
        contrasts=[c.label for c in paired.contrasts], markers=sorted({m for m in probeset.markers if m}),
        disparity=disparity)
    if undefined:
        section.undefined_markers = sorted(undefined)
    if uses_lape(probeset):
        if lape_result is None:
            lape_result = language_lape(model, probeset, config, runs)
        section.lape = Lape.from_dict(lape_section(model, groups, lape_result, paired, config.top_k))
        checked = check_languages(probeset)
        if checked is not None:
            section.language_check = LanguageCheck.from_dict(checked)
    return section


def _marker_breakdown(model: Model, probeset: ProbeSet, responses: np.ndarray, kind: str, output: OutputDisparity,
                      *, top_k: int) -> MarkerBreakdown:
    """The items of one marker kind (e.g. one bias type) analysed on their own, as a per-type import would be:
    counts with their own q-values, the strongest group-selective neurons, and the output preference."""
    rows = np.flatnonzero([m == kind for m in probeset.markers])
    groups = list(probeset.groups)
    subset = ProbeSet(name=f"{probeset.name}:{kind}", kind="paired", description="", sha256="", groups=probeset.groups,
                      items=tuple(probeset.items[i] for i in rows), markers=(kind,) * len(rows),
                      ids=tuple(probeset.item_id(i) for i in rows))
    part = responses[:, rows]
    found: dict[tuple[int, int], GroupNeuron] = {}
    counts: dict[str, Any] = {}
    if len(rows) >= 2:
        paired = group_selectivity(part, groups)
        counts = selective_counts(paired, groups, model.n_layers, min_effect=MIN_EFFECT)
        for row, contrast in enumerate(paired.contrasts):
            differences = contrast_differences(part, groups, contrast)
            single = marker_consistency(differences, subset.markers, min_effect=MIN_EFFECT)
            selective = (paired.q_value[row] < ALPHA) & (np.abs(paired.effect[row]) >= MIN_EFFECT)
            for entry in _top(np.where(selective, np.abs(paired.effect[row]), 0.0), model, subset, paired, single,
                              differences, row, contrast, top_k):
                entry.largest_item_difference["item"] = int(rows[entry.largest_item_difference["item"]])
                found.setdefault((entry.layer, entry.neuron), entry)
    neurons = sorted(found.values(), key=lambda e: (-e.effect, e.layer, e.neuron))[:top_k]
    preference = ABSENT
    if output.preference is not ABSENT and output.preference.rows:
        first = output.preference.rows[0]
        preference = first.by_marker.get(kind, ABSENT)
    return MarkerBreakdown(n_items=int(len(rows)), counts=DisparityCounts.from_dict(counts) if counts else ABSENT,
                           neurons=neurons, preference=preference)


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
    example = {"item": item, "id": probeset.item_id(item), "difference": float(differences[item, flat]),
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


def item_contexts(model: Model, probeset: ProbeSet, responses: np.ndarray, entry: GroupNeuron, *, k: int,
                  max_length: int) -> list[Exemplar]:
    """Token-highlighted probe texts for a paired neuron's card: both versions (its group's, then the other's)
    of the ``k`` items where its response differs most in the neuron's direction, labelled with the item id."""
    groups = list(probeset.groups)
    flat = entry.layer * model.neurons_per_layer + entry.neuron
    # either side of a contrast may be "rest" (every other group): compare the groups on each side
    mine = [g for g in groups if g != entry.versus] if entry.group == REST else [entry.group]
    versus = [g for g in groups if g != entry.group] if entry.versus == REST else [entry.versus]
    own = responses[[groups.index(g) for g in mine], :, flat]
    other = responses[[groups.index(g) for g in versus], :, flat]
    gap = own.mean(axis=0) - other.mean(axis=0)
    items = np.argsort(-gap, kind="stable")[:k]
    shown = [(int(i), g) for i in items
             for g in (mine[int(np.argmax(own[:, i]))], versus[int(np.argmin(other[:, i]))])]
    texts = [probeset.items[i][g] for i, g in shown]
    traces = token_traces(model, texts, [(entry.layer, entry.neuron)], max_length=max_length)
    found = []
    for (item, group), text, trace in zip(shown, texts, traces):
        values = trace["activations"][:, 0]
        at = int(values.argmax()) if len(values) else 0
        start, end = trace["spans"][at] if len(values) else (0, 0)
        found.append(Exemplar(text_index=item, text=text, position=at, token=trace["tokens"][at] if len(values) else "",
                              char_start=int(start), char_end=int(end),
                              activation=float(values.max()) if len(values) else 0.0,
                              token_activations=[round(float(v), 4) for v in values],
                              token_spans=[[int(a), int(b)] for a, b in trace["spans"]],
                              label=f"{group} · {probeset.item_id(item)}"))
    return found


def lape_section(model: Model, groups: list[str], result: LapeResult, paired, top_k: int) -> dict:
    """Language-specific neurons by activation-probability entropy, with counts per language and layer."""
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
    return {"method": f"LAPE (Tang et al. 2024, as in the authors' code): share of tokens with activation > 0 "
                      f"(act(gate) for gated MLPs); neurons with some language above the {result.filter_rate:.0%} "
                      f"k-th probability; the {result.top_rate:.0%} lowest-entropy neurons of all; each assigned to "
                      "the languages above the activation bar",
            "probability_threshold": result.probability_threshold,
            "entropy_threshold": result.entropy_threshold, "activation_bar": result.activation_bar,
            "top_rate": result.top_rate, "n_selected": int(result.selected.sum()),
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
        convention = scoring_convention(model)
        result = {"metric": "mean log-likelihood per token", "table": table, "scoring_convention": convention}
        if not probeset.compares_languages:  # translations are different token sequences: none is "preferred"
            scores = sentence_logliks(runs)
            result["preference"] = {"metric": SENTENCE_SCORE, "scoring_convention": convention,
                                    "tie_credit": LM_EVAL_TIE,
                                    "rows": preference_table(scores, groups, probeset.markers, seed=seed + 13,
                                                             n_resamples=n_resamples, tie=LM_EVAL_TIE)}
            _add_stereoset(result, scores, probeset, seed=seed, n_resamples=n_resamples)
            if "stereoset" in result:
                result["stereoset"]["scoring_convention"] = convention
        if any(target is not None for target in probeset.targets):
            result["target"] = _target_disparity(model, probeset, seed=seed, n_resamples=n_resamples)
            result["target"]["scoring_convention"] = convention
        return result
    embeddings = [acts.outputs["embedding"] for acts in runs]
    pairs = [(a, b) for i, a in enumerate(groups) for b in groups[i + 1:]]
    similarity = np.stack([1.0 - cosine_shift(embeddings[groups.index(a)], embeddings[groups.index(b)])
                           for a, b in pairs])
    result = {"metric": "cosine between an item's pooled sentence embeddings across groups",
              "table": consistency_table(similarity, pairs, seed=seed, n_resamples=n_resamples)}
    if not probeset.compares_languages:  # translations differ in every word: no ordinary word to swap
        sensitivity = counterfactual_sensitivity(model, probeset, np.stack(embeddings), 1.0 - similarity, pairs,
                                                 seed=seed + 19, n_resamples=n_resamples,
                                                 max_length=runs[0].max_length)
        if sensitivity is not None:
            result["sensitivity"] = sensitivity
    if model.mlm is not None and not probeset.compares_languages:
        scores = pseudo_loglik(model, [[item[g] for item in probeset.items] for g in groups],
                               max_length=runs[0].max_length)
        result["preference"] = {"metric": PSEUDO_SCORE, "rows": preference_table(
            scores, groups, probeset.markers, seed=seed + 13, n_resamples=n_resamples)}
        _add_stereoset(result, scores, probeset, seed=seed, n_resamples=n_resamples)
    return result


def _add_stereoset(result: dict[str, Any], scores: np.ndarray, probeset: ProbeSet, *, seed: int,
                   n_resamples: int) -> None:
    """StereoSet's ss / lms / icat from the same sentence scores, for sets with its three groups."""
    found = stereoset_scores(scores, list(probeset.groups), probeset.markers, seed=seed + 17,
                             n_resamples=n_resamples)
    if found is not None:
        result["stereoset"] = found


def sentence_logliks(runs: Sequence[Activations]) -> np.ndarray:
    """Causal LMs: each text's summed log-likelihood (lm-evaluation-harness's), groups × items."""
    return np.stack([acts.outputs["sentence_loglik"] if "sentence_loglik" in acts.outputs
                     else acts.outputs["loglik"] * acts.outputs["n_predicted"] for acts in runs])


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
    check = section.language_check
    if check is not ABSENT and check.mismatches:
        notes.append(f"{name}: {len(check.mismatches)} of {check.checked} texts look like another language than "
                     f"their group's to fastText lid.176 (listed under the set's language check); a wrong or "
                     "untranslated text makes a language contrast partly a content contrast.")
    multilingual = section.multilingual
    if multilingual is not ABSENT and not multilingual.separation.separates:
        notes.append(f"{name}: {multilingual.separation.message}")
    if language:
        notes.append(f"{name}: language-selective neurons may track script, subword statistics or the "
                     "tokenizer's vocabulary coverage rather than language as such; a model trained mostly on one "
                     "language shows this most.")
    return notes
