"""The audit pipeline: harvest each probe set, run the analyses, assemble the result (results.json)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any, Sequence

import numpy as np
import torch

from .errors import expected
from .findings import SCHEMA_VERSION
from .cache import cached_harvest
from .harvest import POOLINGS, Activations, exemplars
from .interventions import MODES
from .models import Model
from .disparity import REST
from .evidence import Responses, attach_evidence
from .paired import paired_caveats, paired_section, uses_lape
from .probes import ProbeSet
from .provenance import package_versions
from .selectivity import ALPHA, Selectivity, bootstrap_auroc_ci, concept_selectivity, shuffled_control
from .sites import neuron_name
from .validation import concept_ablation, load_reference, paired_ablation


@dataclass(frozen=True)
class RunConfig:
    """Settings of one audit run, validated at construction."""

    top_k: int = 20
    seed: int = 0
    batch_size: int = 32
    max_length: int = 128
    pooling: str = "max"
    bootstrap_resamples: int = 1000
    n_exemplars: int = 5
    ablation: bool = True
    ablate_k: int = 10
    ablate_per_layer: int | None = None
    ablation_mode: str = "mean"
    null_sets: int = 20
    ablation_texts: int = 25
    reference: str | None = None
    reference_texts: int = 100
    evidence: bool = True
    cache_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        _check_int("top_k", self.top_k, 1, 1000)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        _check_int("batch_size", self.batch_size, 1, 65536)
        _check_int("max_length", self.max_length, 2, 1 << 20)
        _check_int("bootstrap_resamples", self.bootstrap_resamples, 100, 100_000)
        _check_int("n_exemplars", self.n_exemplars, 1, 100)
        _check_int("ablate_k", self.ablate_k, 1, 10_000)
        if self.ablate_per_layer is not None:
            _check_int("ablate_per_layer", self.ablate_per_layer, 1, 10_000)
        _check_int("null_sets", self.null_sets, 2, 10_000)
        _check_int("ablation_texts", self.ablation_texts, 4, 1_000_000)
        _check_int("reference_texts", self.reference_texts, 10, 1_000_000)
        if self.ablation_mode not in MODES:
            raise expected("The 'ablation_mode' parameter", f"one of {MODES}", self.ablation_mode)
        if self.pooling not in POOLINGS:
            raise expected("The 'pooling' parameter", f"one of {POOLINGS}", self.pooling)

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self)
        settings.pop("progress")
        settings.pop("cache_dir")  # where harvests are cached does not change results
        return settings


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise expected(f"The '{name}' parameter", f"an int in [{low}, {high}]", value)


def run_audit(model: Model, probesets: Sequence[ProbeSet], config: RunConfig = RunConfig()) -> dict[str, Any]:
    """Audit ``model`` on ``probesets``; returns the result dict that results.json serialises."""
    limit = model.max_positions
    clamped = limit is not None and config.max_length > limit
    if clamped:  # longer inputs would index past the position embeddings
        config = replace(config, max_length=limit)
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    torch.manual_seed(config.seed)
    timings: dict[str, float] = {}
    reference = load_reference(config.reference) if config.ablation or config.evidence else []
    sections = []
    aurocs: dict[str, np.ndarray] = {}
    reported: list[tuple[dict[str, Any], str, Responses]] = []
    truncated = 0
    for index, probeset in enumerate(probesets):
        tick = time.perf_counter()
        if probeset.kind == "concept":
            runs = [cached_harvest(model, probeset.texts, cache_dir=config.cache_dir, batch_size=config.batch_size,
                                   max_length=config.max_length, progress=config.progress,
                                   description=probeset.name)]
        else:  # one harvest per group, with outputs (and token probabilities for language sets)
            runs = [cached_harvest(model, [item[group] for item in probeset.items], cache_dir=config.cache_dir,
                                   batch_size=config.batch_size, max_length=config.max_length,
                                   token_moments=uses_lape(probeset), outputs=True, progress=config.progress,
                                   description=f"{probeset.name}:{group}")
                    for group in probeset.groups]
        timings[f"harvest:{probeset.name}"] = time.perf_counter() - tick
        tick = time.perf_counter()
        section = probeset.summary()
        section["truncated_texts"] = sum(int(acts.truncated.sum()) for acts in runs)
        section["n_tokens"] = sum(int(acts.n_tokens.sum()) for acts in runs)
        truncated += section["truncated_texts"]
        seed = config.seed + index
        if probeset.kind == "concept":
            selectivity = concept_selectivity(runs[0].pooled(config.pooling), probeset.labels)
            section.update(concept_section(model, probeset, runs[0], selectivity, config, seed=seed))
            aurocs[probeset.name] = selectivity.auroc
        else:
            section.update(paired_section(model, probeset, runs, config, seed=seed))
        reported += reported_responses(probeset, section, runs, config.pooling)
        timings[f"analysis:{probeset.name}"] = time.perf_counter() - tick
        if config.ablation:
            tick = time.perf_counter()
            section["ablation"] = ablation_section(model, probeset, runs, config, reference, seed=seed)
            timings[f"ablation:{probeset.name}"] = time.perf_counter() - tick
        sections.append(section)
    if config.evidence:
        tick = time.perf_counter()
        reference_acts = cached_harvest(model, reference, cache_dir=config.cache_dir, batch_size=config.batch_size,
                                        max_length=config.max_length, token_moments=True, progress=config.progress,
                                        description="reference")
        attach_evidence(model, reported, aurocs, reference, reference_acts)
        timings["evidence"] = time.perf_counter() - tick
    run = {"seed": config.seed, "started_at": started_at, "duration_s": time.perf_counter() - started,
           "device": str(model.device), "versions": package_versions(), "settings": config.to_dict(),
           "timings_s": timings, "truncated_texts": truncated}
    notes = caveats(sections, config)
    if clamped:
        notes.insert(0, f"Texts were truncated at {limit} tokens, the model's position limit, below the "
                        f"requested max_length.")
    return {"schema_version": SCHEMA_VERSION, "model": model.summary(), "run": run, "probesets": sections,
            "caveats": notes}


def concept_section(model: Model, probeset: ProbeSet, acts: Activations, result: Selectivity, config: RunConfig,
                    *, seed: int) -> dict[str, Any]:
    """Selectivity of every neuron for one concept set, with the top ``top_k`` neurons' evidence."""
    responses = acts.pooled(config.pooling)
    labels = probeset.labels
    control = shuffled_control(responses, labels, seed=seed)
    top = result.ranking()[:config.top_k]
    low, high = bootstrap_auroc_ci(responses[labels][:, top], responses[~labels][:, top], seed=seed,
                                   n_resamples=config.bootstrap_resamples)
    n_neurons = model.neurons_per_layer
    texts = probeset.texts
    neurons = []
    for rank, flat in enumerate(top):
        layer, neuron = divmod(int(flat), n_neurons)
        found = exemplars(model, texts, acts, layer, neuron, k=config.n_exemplars)
        for example in found:
            example["label"] = "positive" if labels[example["text_index"]] else "negative"
        neurons.append({
            "layer": layer, "neuron": neuron, "name": neuron_name(layer, neuron), "rank": rank + 1,
            "direction": "positive" if result.auroc[flat] >= 0.5 else "negative",
            "auroc": result.auroc[flat], "auroc_ci95": [low[rank], high[rank]],
            "effect_size": result.effect_size[flat], "p_value": result.p_value[flat],
            "q_value": result.q_value[flat],
            "mean_positive": responses[labels, flat].mean(), "mean_negative": responses[~labels, flat].mean(),
            "exemplars": found,
        })
    significant = result.significant().reshape(model.n_layers, n_neurons)
    upward = (result.auroc >= 0.5).reshape(model.n_layers, n_neurons)
    histogram, edges = np.histogram(result.auroc, bins=20, range=(0.0, 1.0))
    return {
        "pooling": config.pooling, "test": "Mann-Whitney U (two-sided), Benjamini-Hochberg across all neurons",
        "alpha": ALPHA, "neurons": neurons,
        "summary": {
            "n_neurons_tested": int(result.auroc.size),
            "n_significant": int(significant.sum()),
            "n_significant_positive": int((significant & upward).sum()),
            "n_significant_negative": int((significant & ~upward).sum()),
            "per_layer_significant_positive": (significant & upward).sum(axis=1),
            "per_layer_significant_negative": (significant & ~upward).sum(axis=1),
            "max_auroc": float(result.auroc.max()), "min_auroc": float(result.auroc.min()),
            "strong_selective": {str(t): int((result.significant() & (result.strength >= t - 0.5)).sum())
                                 for t in (0.7, 0.8, 0.9)},
            "auroc_histogram": {"edges": edges, "counts": histogram},
        },
        "control": {"kind": "shuffled labels", "seed": seed, "n_significant": int(control.significant().sum()),
                    "max_abs_auroc_deviation": float(control.strength.max())},
    }


def reported_responses(probeset: ProbeSet, section: dict[str, Any], runs: Sequence[Activations],
                       pooling: str) -> list[tuple[dict[str, Any], str, Responses]]:
    """Each reported neuron with its per-text responses on the side it prefers and on the other side."""
    found = []
    if probeset.kind == "concept":
        labels = probeset.labels
        for entry in section["neurons"]:
            values = runs[0].pooled(pooling)[:, entry["layer"] * runs[0].max.shape[2] + entry["neuron"]]
            sides = (labels, ~labels, ("positive", "negative"))
            if entry["direction"] != "positive":
                sides = (~labels, labels, ("negative", "positive"))
            found.append((entry, probeset.name, Responses(values[sides[0]], values[sides[1]], sides[2])))
        return found
    groups = list(probeset.groups)

    def side(group: str, layer: int, neuron: int, exclude: str) -> np.ndarray:
        chosen = [g for g in groups if g != exclude] if group == REST else [group]
        width = runs[0].max.shape[2]
        return np.concatenate([runs[groups.index(g)].pooled(pooling)[:, layer * width + neuron] for g in chosen])

    for entry in section["disparity"]["neurons"]:
        layer, neuron = entry["layer"], entry["neuron"]
        preferred = side(entry["group"], layer, neuron, entry["versus"])
        other = side(entry["versus"], layer, neuron, entry["group"])
        found.append((entry, probeset.name, Responses(preferred, other, (entry["group"], entry["versus"]))))
    return found


def ablation_section(model: Model, probeset: ProbeSet, runs: Sequence[Activations], config: RunConfig,
                     reference: Sequence[str], *, seed: int) -> dict[str, Any]:
    """Causal validation of this set's flagged neurons against random-neuron baselines."""
    if probeset.kind == "concept":
        return concept_ablation(model, probeset, runs[0], config, reference, seed=seed)
    return paired_ablation(model, probeset, runs, config, seed=seed)


def caveats(sections: Sequence[dict[str, Any]], config: RunConfig) -> list[str]:
    """Plain-language limits of this run's findings."""
    notes = [
        "Selectivity is correlational: a neuron that separates the probe texts need not cause the model's "
        "behaviour on them; ablation validation tells the two apart.",
        f"Responses are {config.pooling}-pooled over real tokens per text; a neuron can respond to one word "
        "of a text rather than to the concept as a whole (see each neuron's exemplars).",
        "Findings hold for these probe texts; other wordings, domains or languages may activate other neurons.",
    ]
    if config.ablation:
        notes.append(f"Ablation effects are measured on up to {config.ablation_texts} texts per side (or items) "
                     f"and compared with {config.null_sets} random neuron sets, so the smallest possible empirical "
                     f"p-value is 1/{config.null_sets + 1}; neurons often act jointly, so the effect of a set is not "
                     "the sum of its members' effects.")
    for section in sections:
        if section.get("truncated_texts"):
            notes.append(f"{section['name']}: {section['truncated_texts']} texts were longer than "
                         f"{config.max_length} tokens and were truncated.")
        control = section.get("control")
        if control and control["n_significant"]:
            notes.append(f"{section['name']}: with shuffled labels {control['n_significant']} neurons still "
                         "passed q < 0.05; treat borderline q-values with care.")
        if section["kind"] == "paired":
            notes.extend(paired_caveats(section))
        if section["kind"] == "concept" and min(section["n_positive"], section["n_negative"]) < 30:
            notes.append(f"{section['name']}: fewer than 30 texts per side; AUROC intervals are wide.")
    return notes
