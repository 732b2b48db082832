"""The multilingual part of an audit, for paired sets whose groups are languages.

1. LAPE as published (Tang et al. 2024): activation probabilities per language over the set's texts.
2. Separation: does the model treat these languages as languages at all (tokenizer parity, translation
   retrieval, LAPE uniformity)? An English-only model does not, and the section says so in plain words.
3. Fairness: each language's perplexity on its bundled reference text (causal LMs).
4. The deactivation matrix: zero each language's LAPE neurons (as the paper does) and measure every
   language's reference-text perplexity, against a random set of the same size and layers.
   Neurons are identified on the probe set's texts plus the even lines of each language's bundled reference
   text, and tested on its odd lines, as the paper keeps its identification and evaluation data apart (and
   each deactivated pass costs half as much).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from ..analysis.language_separation import MAX_PARITY, MIN_RETRIEVAL, UNIFORM_ENTROPY, separation, served
from ..analysis.lape import Lape as LapeResult
from ..analysis.lape import deactivation_matrix, diagonal_dominance, language_perplexity, lape, matched_random
from ..analysis.lape import normalised_entropy
from ..config import RunConfig
from ..model.activation import activation_counts, predicted_tokens
from ..model.harvest import Activations
from ..model.interventions import make_intervention, measure
from ..model.loading import Model
from ..probes.probeset import ProbeSet
from ..probes.reference import LANGUAGE_REFERENCE_SOURCE, language_reference
from ..results.contract import (
    Deactivation,
    DeactivationRow,
    LanguagePerplexity,
    LanguageSeparation,
    Multilingual,
    PairedSection,
)

RANDOM_ROW = "random"
LARGE_VOCABULARY = 100_000  # above this, full-vocabulary log-probabilities get big: smaller batches
FAIRNESS_NOTE = ("Per-language perplexity compares how well the model predicts the same everyday content in each "
                 "language. Per-language toxicity and clinical selectivity need translated toxicity and clinical "
                 "sets; none are bundled, so give translated concept sets with --probeset to compare them.")


def reference_language(groups: Sequence[str]) -> int:
    """English when the set has it (the usual pivot of translations), else the first group."""
    lowered = [g.lower().split("-")[0].split("_")[0] for g in groups]
    return lowered.index("en") if "en" in lowered else 0


def identification_lines(language: str) -> list[str]:
    """The even lines of a language's bundled reference text (none when it has none): LAPE reads them."""
    return (language_reference(language) or [])[0::2]


def evaluation_lines(language: str) -> list[str]:
    """The odd lines of a language's bundled reference text: perplexity and the deactivation matrix."""
    return (language_reference(language) or [])[1::2]


def language_lape(model: Model, probeset: ProbeSet, config: RunConfig,
                  runs: Sequence[Activations] = ()) -> LapeResult:
    """LAPE over each language's texts of the set: share of real tokens on which each neuron's activation
    (``act(gate)`` for gated MLPs) is > 0, then the paper's filters. The items' counts come from ``runs``
    (the set's harvests, one per group) when they were harvested with ``active_counts``; the identification
    lines, and items no harvest counted, take a pass of their own."""
    probability = []
    for index, group in enumerate(probeset.groups):
        items = [item[group] for item in probeset.items]
        counted = runs[index] if len(runs) == len(probeset.groups) and runs[index].active is not None else None
        texts = identification_lines(group) if counted is not None else items + identification_lines(group)
        counts, total = activation_counts(model, texts, batch_size=config.batch_size, max_length=config.max_length)
        if counted is not None:
            counts, total = counts + counted.active.reshape(-1), total + counted.token_count
        probability.append(counts / max(total, 1))
    return lape(np.stack(probability))


def multilingual_section(model: Model, probeset: ProbeSet, runs: Sequence[Activations], section: PairedSection,
                         found: LapeResult, config: RunConfig, *, seed: int) -> Multilingual:
    """Separation diagnostics, per-language perplexity and the deactivation matrix for one language set."""
    groups = list(probeset.groups)
    result = Multilingual(separation=_separation(model, groups, runs, section, found, config))
    skipped: list[str] = []
    if model.kind != "causal-lm":
        skipped.append("perplexity and the deactivation matrix: the model is an encoder, which gives no "
                       "perplexity (the paper's evidence needs a language model)")
    else:
        texts = {g: evaluation_lines(g) for g in groups}
        missing = [g for g, t in texts.items() if not t]
        if missing:
            skipped.append(f"no bundled reference text for {', '.join(missing)}: left out of perplexity and the "
                           "deactivation matrix")
        languages = [g for g in groups if texts[g]]
        if len(languages) >= 2:
            sets = {g: np.flatnonzero(found.assigned[groups.index(g)]) for g in languages}
            empty = [g for g, s in sets.items() if len(s) == 0]
            if not result.separation.separates:  # per-language perplexity still shows whom the model serves
                sets = {}
                skipped.append("the deactivation matrix: the model does not tell these languages apart, so its LAPE "
                               "neurons mostly map the tokenizer's coverage and switching them off would test no "
                               "language-specific processing")
            elif empty:
                skipped.append(f"LAPE assigned no neurons to {', '.join(empty)}: no deactivation row for them")
            result.perplexity, deactivation = measure_deactivation(
                model, languages, {g: texts[g] for g in languages}, {g: s for g, s in sets.items() if len(s)},
                np.flatnonzero(found.selected), config, seed=seed)
            if deactivation is not None:
                result.deactivation = deactivation
    result.fairness_note = FAIRNESS_NOTE
    if skipped:
        result.skipped = skipped
    return result


def _separation(model: Model, groups: list[str], runs: Sequence[Activations], section: PairedSection,
                found: LapeResult, config: RunConfig) -> LanguageSeparation:
    reference = reference_language(groups)
    responses = np.stack([acts.pooled("mean") for acts in runs])
    n_tokens = np.stack([acts.n_tokens for acts in runs])
    measured = separation(responses, n_tokens, reference)
    ok = served(measured, reference)
    entropy = normalised_entropy(found)
    others = [g for i, g in enumerate(groups) if i != reference]
    not_served = [g for i, g in enumerate(groups) if not ok[i]]
    uniform = entropy is not None and entropy >= UNIFORM_ENTROPY
    separates = not not_served and not uniform
    ref = groups[reference]
    selective = section.disparity.counts.q_and_effect.any_group
    n_lape = int(found.assigned.any(axis=0).sum())
    worst = max(others, key=lambda g: measured.parity[groups.index(g)]) if others else ref
    numbers = (f"a text's nearest {ref} text (each language centred on its mean) is its own translation for "
               f"{_range(measured.retrieval, groups, reference, percent=True)} of texts (chance "
               f"{measured.chance:.1%}), and the tokenizer needs {_range(measured.parity, groups, reference)}× "
               f"the tokens of {ref} for the same content ({worst}: {measured.parity[groups.index(worst)]:.2f}×)")
    if separates:
        message = (f"{model.name} treats all {len(groups)} languages as languages it knows: {numbers}. Its LAPE "
                   f"neurons ({n_lape}) are candidates for language-specific processing; the deactivation matrix "
                   "below tests whether they are.")
    elif not_served:
        message = (f"{model.name} does not process {', '.join(x for x in not_served)} as languages it knows: "
                   f"{numbers}; a language counts as known at >= {MIN_RETRIEVAL:.0%} retrieval and <= "
                   f"{MAX_PARITY:g}× the tokens. The {selective} group-selective neurons and {n_lape} LAPE neurons "
                   f"of this set therefore mostly tell unfamiliar word pieces from {ref}, not one language from "
                   "another: read them as a map of the tokenizer's coverage, not as findings about language-specific "
                   "neurons or about fairness across languages. Audit multilingual behaviour on a multilingual "
                   "model (e.g. --model gemma3).")
    else:
        message = (f"{model.name}'s LAPE neurons hardly prefer any language (mean normalised entropy "
                   f"{entropy:.2f}, 1 = equal in all): {numbers}. The {n_lape} LAPE neurons are the least uniform "
                   "of a near-uniform population, not evidence of language-specific neurons.")
    return LanguageSeparation(
        reference_language=ref, parity=_by_group(measured.parity, groups),
        retrieval=_by_group(measured.retrieval, groups), chance=measured.chance,
        translation_cosine=_by_group(measured.translation_cosine, groups),
        other_cosine=_by_group(measured.other_cosine, groups), lape_entropy=entropy,
        served=[g for i, g in enumerate(groups) if ok[i]], not_served=not_served, separates=bool(separates),
        message=message)


def _by_group(values: np.ndarray, groups: list[str]) -> dict[str, float]:
    return {g: round(float(v), 4) for g, v in zip(groups, values)}


def _range(values: np.ndarray, groups: list[str], reference: int, *, percent: bool = False) -> str:
    others = [float(v) for i, v in enumerate(values) if i != reference]
    if not others:
        return "—"
    low, high = min(others), max(others)
    show = (lambda v: f"{v:.0%}") if percent else (lambda v: f"{v:.2f}")
    return show(low) if np.isclose(low, high) else f"{show(low)}–{show(high)}"


def measure_deactivation(model: Model, languages: list[str], texts: dict[str, list[str]], sets: dict[str, np.ndarray],
                  selected: np.ndarray, config: RunConfig, *, seed: int
                  ) -> tuple[list[LanguagePerplexity], Deactivation | None]:
    """One clean pass and one pass per deactivated set over every language's reference text."""
    tick = time.perf_counter()
    n_neurons, n_layers = model.neurons_per_layer, model.n_layers
    per_layer = {g: np.bincount(s // n_neurons, minlength=n_layers) for g, s in sets.items()}
    rows = list(sets)
    neuron_sets = [sets[g] for g in rows]
    if rows:  # the control: the languages' mean count in each layer, drawn outside every LAPE-selected neuron
        typical = np.rint(np.mean([per_layer[g] for g in rows], axis=0)).astype(int)
        neuron_sets.append(matched_random(typical, n_neurons, selected, seed=seed))
        per_layer[RANDOM_ROW] = typical
        rows.append(RANDOM_ROW)
    everything = [t for g in languages for t in texts[g]]
    bounds = np.cumsum([0] + [len(texts[g]) for g in languages])
    vocabulary = getattr(model.module.config, "vocab_size", 0) or 0
    batch = min(config.batch_size, 8) if vocabulary > LARGE_VOCABULARY else config.batch_size
    measured = measure(model, everything, [make_intervention(s, "zero") for s in neuron_sets], batch_size=batch,
                       max_length=config.max_length, kl=False)  # perplexity only: no vocabulary-wide copies
    n_tokens = predicted_tokens(model, everything, max_length=config.max_length)
    spans = [slice(bounds[i], bounds[i + 1]) for i in range(len(languages))]
    clean = [measured.loglik[s] for s in spans]
    counts = [n_tokens[s] for s in spans]
    perplexity = [LanguagePerplexity(language=g, **row) for g, row in
                  zip(languages, language_perplexity(clean, counts, seed=seed, n_resamples=config.bootstrap_resamples))]
    if not neuron_sets:
        return perplexity, None
    matrix = deactivation_matrix(clean, [measured.loglik_ablated[:, s] for s in spans], counts, seed=seed + 1,
                                 n_resamples=config.bootstrap_resamples)
    square = np.array([[matrix["ratio"][r, languages.index(g)] for g in rows[:-1]] for r in range(len(rows) - 1)])
    dominance = diagonal_dominance(square) if len(square) else []
    table, summary = [], []
    for r, name in enumerate(rows):
        own = dominance[r] if name != RANDOM_ROW else {"own_rise": None, "others_rise": None, "times": None}
        table.append(DeactivationRow(
            deactivated=name, n_neurons=int(len(neuron_sets[r])), per_layer=[int(v) for v in per_layer[name]],
            ratio={g: float(matrix["ratio"][r, i]) for i, g in enumerate(languages)},
            ci95={g: [float(matrix["low"][r, i]), float(matrix["high"][r, i])] for i, g in enumerate(languages)},
            **own))
        if name != RANDOM_ROW:
            summary.append(_summary(name, own))
    random_row = matrix["ratio"][-1]
    summary.append(f"deactivating {len(neuron_sets[-1])} random neuron{'s' if len(neuron_sets[-1]) != 1 else ''} in "
                   f"the same layers changes perplexity by "
                   f"{(random_row.mean() - 1):+.1%} on average ({', '.join(f'{g} {v - 1:+.1%}' for g, v in zip(languages, random_row))})")
    deactivation = Deactivation(
        method="LAPE neurons of each language set to zero at the MLP down-projection input (as Tang et al. 2024 "
               "zero act(gate)); perplexity ratio deactivated / clean on each language's reference text, 95% "
               "bootstrap CI over texts",
        languages=languages, dtype=str(model.dtype).removeprefix("torch."),
        reference=f"{LANGUAGE_REFERENCE_SOURCE}, odd lines (the even lines help identify the neurons)",
        rows=table, random_seed=seed, summary=summary, duration_s=round(time.perf_counter() - tick, 2))
    return perplexity, deactivation


def _summary(language: str, row: dict) -> str:
    own, others, times = row["own_rise"], row["others_rise"], row["times"]
    if times is not None:
        return (f"deactivating {language} neurons raises {language} perplexity {times:.1f}× as much as the other "
                f"languages' on average ({own:+.1%} vs {others:+.1%})")
    return (f"deactivating {language} neurons changes {language} perplexity by {own:+.1%} and the other languages' "
            f"by {others:+.1%} on average")
