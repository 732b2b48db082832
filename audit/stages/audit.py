"""The audit pipeline: harvest each probe set, run the analyses, assemble the result (results.json)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timezone
from itertools import chain
from typing import Any, Sequence

import numpy as np
import torch

from ..analysis.disparity import REST
from ..analysis.selectivity import concept_selectivity
from ..config import RunConfig
from ..execution.executor import Executor
from ..execution.state import StateStore
from ..model.cache import Runner, cached_harvest, harvest_key
from ..model.contexts import keyed
from ..model.harvest import Activations
from ..model.loading import Model
from ..model.similarity import word_vectors
from ..probes.corpus import iter_corpus
from ..probes.probeset import ProbeSet
from ..probes.reference import load_reference
from ..provenance import package_versions
from ..results.contract import (
    AuditResult,
    ConceptSection,
    ModelInfo,
    NeuronEntry,
    PairedSection,
    RunInfo,
    SkippedAblation,
)
from ..analysis.multiple_testing import sets_needed
from ..results.record import ABSENT
from .ablation import Plan, correct_ablations, plan_concept, plan_paired, reference_features, run_plan
from .concept import concept_section
from .evidence import Responses, attach_evidence, neuron_classes
from .explain import attach_explanations
from .languages import language_lape, multilingual_section
from .paired import paired_caveats, paired_section, uses_lape


def run_audit(model: Model, probesets: Sequence[ProbeSet], config: RunConfig = RunConfig(), *,
              executor: Executor | None = None, state: StateStore | None = None) -> AuditResult:
    """Audit ``model`` on ``probesets``; returns the typed result that results.json serialises.

    ``executor`` runs the harvests (sharded, possibly on a Ray cluster; default: plainly in this process);
    ``state`` keeps finished shards so an interrupted run resumes. Neither changes a number of the result.
    """
    limit = model.max_positions
    clamped = limit is not None and config.max_length > limit
    if clamped:  # longer inputs would index past the position embeddings
        config = replace(config, max_length=limit)
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    torch.manual_seed(config.seed)
    timings: dict[str, float] = {}
    reference = load_reference(config.reference) if config.ablation or config.evidence else []
    sections: list[ConceptSection | PairedSection] = []
    aurocs: dict[str, np.ndarray] = {}
    reported: list[tuple[NeuronEntry, str, Responses]] = []
    truncated = 0
    plans: list[tuple[ConceptSection | PairedSection, ProbeSet, Sequence[Activations], Any, int]] = []
    reference_acts: Activations | None = None

    def collect(texts: Sequence[str], *, token_moments: bool = False, outputs: bool = False,
                active_counts: bool = False, description: str) -> Activations:
        return cached_harvest(model, texts, cache_dir=config.cache_dir, batch_size=config.batch_size,
                              max_length=config.max_length, token_moments=token_moments, outputs=outputs,
                              active_counts=active_counts,
                              progress=config.progress, description=description,
                              runner=_runner(model, executor, state), memory_budget_mb=config.memory_budget_mb)

    for index, probeset in enumerate(probesets):
        tick = time.perf_counter()
        if probeset.kind == "concept":
            runs = [collect(probeset.texts, description=probeset.name)]
        else:  # one harvest per group, with outputs (and LAPE's activation counts for language sets)
            runs = [collect([item[group] for item in probeset.items], active_counts=uses_lape(probeset),
                            outputs=True, description=f"{probeset.name}:{group}")
                    for group in probeset.groups]
        timings[f"harvest:{probeset.name}"] = time.perf_counter() - tick
        tick = time.perf_counter()
        seed = config.seed + index
        section: ConceptSection | PairedSection
        if probeset.kind == "concept":
            selectivity = concept_selectivity(runs[0].pooled(config.pooling), probeset.labels)
            section = concept_section(model, probeset, runs[0], selectivity, config, seed=seed)
            aurocs[probeset.name] = selectivity.auroc
        else:
            found = language_lape(model, probeset, config, runs) if uses_lape(probeset) else None
            section = paired_section(model, probeset, runs, config, seed=seed, lape_result=found)
            if found is not None:
                tick_languages = time.perf_counter()
                section.multilingual = multilingual_section(model, probeset, runs, section, found, config, seed=seed)
                timings[f"multilingual:{probeset.name}"] = time.perf_counter() - tick_languages
        truncated += section.truncated_texts
        reported += reported_responses(probeset, section, runs, config.pooling)
        timings[f"analysis:{probeset.name}"] = time.perf_counter() - tick
        if config.ablation:
            if reference_acts is None:  # the matched nulls match on its activation statistics
                tick = time.perf_counter()
                reference_acts = collect(reference, token_moments=True, description="reference")
                timings["harvest:reference"] = time.perf_counter() - tick
            tick = time.perf_counter()
            plan = ablation_plan(model, probeset, runs, config, reference_features(reference_acts.token_stats()),
                                 seed=seed, section=section)
            plans.append((section, probeset, runs, plan, seed))
            timings[f"ablation:{probeset.name}"] = time.perf_counter() - tick
        sections.append(section)
    if plans:  # every set's doses are one correction family: each set starts with α/S, so ⌈S/α⌉ sets resolve
        n_sets = sets_needed(max(sum(isinstance(plan, Plan) for *_, plan, _ in plans), 1))
        measured = []
        for section, probeset, runs, plan, seed in plans:
            tick = time.perf_counter()
            if isinstance(plan, SkippedAblation):
                section.ablation = plan
            else:
                measured.append(run_plan(model, probeset, plan, config, reference, n_sets=n_sets, seed=seed,
                                         runs=runs))
                section.ablation = measured[-1].ablation
            timings[f"ablation:{probeset.name}"] += time.perf_counter() - tick
        tick = time.perf_counter()
        correct_ablations(measured)
        timings["ablation:tests"] = time.perf_counter() - tick
        del measured
        del plans
    classes = None
    if config.neuron_classes and model.kind == "causal-lm":
        tick = time.perf_counter()
        classes = neuron_classes(model, cache_dir=config.cache_dir)
        timings["neuron_classes"] = time.perf_counter() - tick
    if config.evidence:
        tick = time.perf_counter()
        if reference_acts is None:
            reference_acts = collect(reference, token_moments=True, description="reference")
        attach_evidence(model, reported, aurocs, reference, reference_acts,
                        classes=classes[1] if classes is not None else None)
        timings["evidence"] = time.perf_counter() - tick
        # a language set the model does not tell apart has no language neurons to explain (its group-selective
        # neurons map the tokenizer's coverage; the report shows no cards for them)
        unseparated = {s.name for s in sections if isinstance(s, PairedSection) and s.multilingual is not ABSENT
                       and not s.multilingual.separation.separates}
        explained = [r for r in reported if r[1] not in unseparated]
        if config.explain and explained:
            timings.update({f"explain:{k}": v for k, v in explanations(model, probesets, explained, reference,
                                                                       set(aurocs), config).items()})
    run = RunInfo(seed=config.seed, started_at=started_at, duration_s=time.perf_counter() - started,
                  device=str(model.device), versions=package_versions(), settings=config.to_dict(),
                  timings_s=timings, truncated_texts=truncated,
                  execution=(executor or Executor()).describe())
    notes = caveats(sections, config)
    if clamped:
        notes.insert(0, f"Texts were truncated at {limit} tokens, the model's position limit, below the "
                        f"requested max_length.")
    result = AuditResult(model=ModelInfo.from_dict(model.summary()), run=run, probesets=sections, caveats=notes)
    if classes is not None:
        result.neuron_classes = classes[0]
    return result


def _runner(model: Model, executor: Executor | None, state: StateStore | None) -> Runner | None:
    """The harvest runner for :func:`cached_harvest`: the executor's, with the run's shard states."""
    if executor is None:
        return None

    def run(texts: Sequence[str], settings: dict[str, Any], description: str) -> Activations:
        job = None
        if state is not None and executor.shard_size is not None:
            job = state.job("harvest-" + harvest_key(model, texts, {**settings, "shard_size": executor.shard_size}))
        return executor.harvest(model, texts, settings=settings, description=description, job=job)

    return run


def explanations(model: Model, probesets: Sequence[ProbeSet], reported: list, reference: Sequence[str],
                 concept_sets: set[str], config: RunConfig) -> dict[str, float]:
    """Explain each reported neuron (top contexts from its probe set, the reference corpus and any
    ``--corpus``) and rebuild its polysemanticity verdict on the explanation."""
    tick = time.perf_counter()
    vectors = word_vectors(model, config.word_vectors)
    texts = {p.name: p.texts if p.kind == "concept" else [item[g] for item in p.items for g in p.groups]
             for p in probesets}
    general = keyed(reference, "reference")
    if config.corpus:
        general = chain(general, iter_corpus(config.corpus))
    timings = attach_explanations(model, reported, texts, general, vectors, concept_sets, k=config.explain_k,
                                  max_length=config.max_length, batch_size=config.batch_size, seed=config.seed)
    timings["vectors"] = time.perf_counter() - tick - timings["contexts"] - timings["explain"]
    return timings


def reported_responses(probeset: ProbeSet, section: ConceptSection | PairedSection, runs: Sequence[Activations],
                       pooling: str) -> list[tuple[NeuronEntry, str, Responses]]:
    """Each reported neuron with its per-text responses on the side it prefers and on the other side."""
    found = []
    if probeset.kind == "concept":
        labels = probeset.labels
        for entry in section.neurons:
            values = runs[0].pooled(pooling)[:, entry.layer * runs[0].max.shape[2] + entry.neuron]
            sides = (labels, ~labels, ("positive", "negative"))
            if entry.direction != "positive":
                sides = (~labels, labels, ("negative", "positive"))
            found.append((entry, probeset.name, Responses(values[sides[0]], values[sides[1]], sides[2])))
        return found
    groups = list(probeset.groups)

    def side(group: str, layer: int, neuron: int, exclude: str) -> np.ndarray:
        chosen = [g for g in groups if g != exclude] if group == REST else [group]
        width = runs[0].max.shape[2]
        return np.concatenate([runs[groups.index(g)].pooled(pooling)[:, layer * width + neuron] for g in chosen])

    for entry in section.disparity.neurons:
        preferred = side(entry.group, entry.layer, entry.neuron, entry.versus)
        other = side(entry.versus, entry.layer, entry.neuron, entry.group)
        found.append((entry, probeset.name, Responses(preferred, other, (entry.group, entry.versus))))
    return found


def ablation_plan(model: Model, probeset: ProbeSet, runs: Sequence[Activations], config: RunConfig,
                  features: np.ndarray, *, seed: int, section: ConceptSection | PairedSection | None = None,
                  ) -> Plan | SkippedAblation:
    """The neurons this set's ablation will test (chosen on held-apart texts) and its doses. A language set
    is not ablated when the model does not tell its languages apart (its group-selective neurons mostly map
    the tokenizer's coverage: a causal test of them would validate nothing about languages and cost a share
    of α) or when the deactivation matrix already tests its language neurons causally."""
    multilingual = getattr(section, "multilingual", ABSENT)
    multilingual = None if multilingual is ABSENT else multilingual
    if multilingual is not None and not multilingual.separation.separates:
        return SkippedAblation(skipped="the model does not tell these languages apart (see the multilingual "
                                       "section), so its group-selective neurons are not tested as language neurons")
    if multilingual is not None and multilingual.deactivation not in (None, ABSENT):
        return SkippedAblation(skipped="this set's language neurons are tested causally by the deactivation matrix "
                                       "(see the multilingual section), the test LAPE was published with")
    if probeset.kind == "concept":
        return plan_concept(model, probeset, runs[0], config, features, seed=seed)
    return plan_paired(model, probeset, runs, config, features, seed=seed)


def caveats(sections: Sequence[ConceptSection | PairedSection], config: RunConfig) -> list[str]:
    """Plain-language limits of this run's findings."""
    notes = [
        "Selectivity is correlational: a neuron that separates the probe texts need not cause the model's "
        "behaviour on them; ablation validation tells the two apart.",
        f"Responses are {config.pooling}-pooled over real tokens per text; a neuron can respond to one word "
        "of a text rather than to the concept as a whole (see each neuron's exemplars).",
        "Findings hold for these probe texts; other wordings, domains or languages may activate other neurons.",
    ]
    if config.ablation:
        notes.append(f"Ablation effects are measured on up to {config.ablation_texts} texts per side (or items). "
                     "Each dose is tested against random neuron sets matched on layer and on activation density "
                     "and mean over the reference corpus, drawn until 10 of them match the effect (Besag–Clifford) "
                     "or until enough are drawn for the smallest p to clear its corrected threshold. Each probe "
                     "set's doses are tested from the strongest down to k = 1, stopping at the first that is not "
                     "validated, with the sets' shares of α = 0.05 joined as in Holm's procedure (a graphical "
                     "procedure, Bretz et al. 2009); a layer-matched null of "
                     f"{config.null_sets} sets is shown beside the headline dose. Neurons often act jointly, so the effect of a set is not the sum of its members' "
                     "effects.")
    for section in sections:
        if section.truncated_texts:
            notes.append(f"{section.name}: {section.truncated_texts} texts were longer than "
                         f"{config.max_length} tokens and were truncated.")
        if isinstance(section, PairedSection):
            notes.extend(paired_caveats(section))
            continue
        if section.control.n_significant:
            notes.append(f"{section.name}: with shuffled labels {section.control.n_significant} neurons still "
                         "passed q < 0.05; treat borderline q-values with care.")
        if min(section.n_positive, section.n_negative) < 30:
            notes.append(f"{section.name}: fewer than 30 texts per side; AUROC intervals are wide.")
    return notes
