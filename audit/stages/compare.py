"""Checkpoint comparison: match two models' neurons by correlation on a corpus, then diff their audits.

``run_compare`` streams the corpus through both models (in as many passes as the memory budget needs),
matches every neuron to its most correlated partner with a rotation baseline (Gurnee et al. 2024), and,
when probe sets are given, audits both models and compares their flagged neurons through the matching.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from typing import Sequence

import numpy as np

from ..analysis.comparison import excess_pair_gap, flag_diff, output_change
from ..analysis.correlation import Matching, SideMatch, layer_pairs, match, plan_blocks
from ..analysis.disparity import group_selectivity
from ..analysis.selectivity import ALPHA, concept_selectivity
from ..config import CompareConfig, RunConfig
from ..model.cache import cached_harvest
from ..execution.executor import Executor
from ..execution.state import StateStore
from ..model.correlate import resolve_alignment, survey_corpus, used_length
from ..model.loading import Model
from ..model.sites import neuron_name
from ..probes.probeset import ProbeSet
from ..provenance import package_versions, sha256_json
from ..results.compare_contract import (
    Audits,
    ComparisonResult,
    CorrelationHistogram,
    CorrelationSettings,
    FlaggedPair,
    LayerPersistence,
    MatchTable,
    NeuronChange,
    OutputChange,
    ProbesetDiff,
)
from ..results.contract import AuditResult, ConceptSection, ModelInfo, PairedSection, RunInfo
from .audit import run_audit
from .counterfactual import control_plan, excess_per_item
from .paired import MIN_EFFECT

STRONG = 0.3  # |AUROC − 0.5| of a strongly selective concept neuron (AUROC ≥ 0.8 or ≤ 0.2), as policies count


def run_compare(model_a: Model, model_b: Model, corpus: Sequence[str], *, corpus_name: str, corpus_sha256: str,
                probesets: Sequence[ProbeSet] = (), config: RunConfig = RunConfig(),
                compare: CompareConfig = CompareConfig(), executor: Executor | None = None,
                state: StateStore | None = None) -> ComparisonResult:
    """Compare ``model_b`` against ``model_a``: the neuron matching on ``corpus`` and the audit diff.

    ``executor`` runs the correlation and the audits' harvests (sharded, possibly on a Ray cluster whose
    workers hold both models); ``state`` keeps finished shards so an interrupted comparison resumes."""
    executor = executor or Executor()
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    mode = compare.layers
    if mode == "auto":
        mode = "same" if model_a.n_layers == model_b.n_layers else "depth"
    pairs = layer_pairs(model_a.n_layers, model_b.n_layers, mode)
    align = resolve_alignment(model_a, model_b, compare.align)
    survey = survey_corpus(model_a, model_b, corpus, config.max_length)
    fell_back = compare.align == "auto" and align == "tokens" and not survey.same_tokens
    if fell_back:  # same vocabulary, yet some text reads as other tokens (e.g. cut at another length)
        align = "texts"
    stride = compare.baseline_stride if align == "tokens" else 1
    blocks = plan_blocks(pairs, model_a.neurons_per_layer, model_b.neurons_per_layer,
                         compare.memory_budget_mb * 2 ** 20)
    tick = time.perf_counter()
    states = []
    settings = {"align": align, "batch_size": config.batch_size, "max_length": config.max_length, "stride": stride,
                "precision": compare.precision}
    for number, block in enumerate(blocks):
        job = None
        if state is not None and executor.shard_size is not None:
            job = state.job(f"correlate-{number}-" + sha256_json({"pairs": block, **settings})[:16])
        states.append(executor.correlate(model_a, model_b, corpus, block, settings=settings,
                                         description=f"compare {number + 1}/{len(blocks)}", job=job))
    timings["correlation"] = time.perf_counter() - tick
    tick = time.perf_counter()
    matching = match(states, seed=config.seed)
    timings["matching"] = time.perf_counter() - tick
    reason = ("both models tokenize the corpus into the same tokens, so every real token is a sample"
              if align == "tokens" else
              "the tokenizers share a vocabulary but read some texts as different tokens (e.g. cut at different "
              "lengths), so each text is a sample: a neuron's mean over the text's real tokens" if fell_back else
              "the tokenizers differ, so each text is a sample: a neuron's mean over the text's real tokens")
    settings = CorrelationSettings(
        corpus=corpus_name, corpus_sha256=corpus_sha256, n_texts=len(corpus), alignment=align,
        alignment_reason=reason, n_samples=matching.n_samples, n_baseline_samples=matching.n_baseline_samples,
        baseline_stride=stride, precision=compare.precision, baseline="max Pearson r against the other model's standardised neurons mixed by a "
                                         "random matrix with unit-norm Gaussian rows, one per layer",
        layer_mode=mode, layer_pairs=[list(p) for p in pairs], blocks=len(blocks), threshold=compare.threshold,
        seed=config.seed, max_length=config.max_length, max_length_used=list(survey.max_length),
        truncated_texts=list(survey.truncated))
    diffs: list[ProbesetDiff] = []
    audits = None
    if probesets and compare.audit:
        with tempfile.TemporaryDirectory(prefix="neuron-audit-compare-") as scratch:
            cache = config.cache_dir or scratch  # the diff re-reads the audits' harvests instead of re-running
            run_config = replace(config, cache_dir=cache)
            tick = time.perf_counter()
            audit_a = run_audit(model_a, probesets, run_config, executor=executor, state=state)
            timings["audit:a"] = time.perf_counter() - tick
            tick = time.perf_counter()
            audit_b = run_audit(model_b, probesets, run_config, executor=executor, state=state)
            timings["audit:b"] = time.perf_counter() - tick
            tick = time.perf_counter()
            diffs = [probeset_diff(model_a, model_b, probeset, audit_a, audit_b, matching, run_config,
                                   compare.threshold, seed=config.seed + i) for i, probeset in enumerate(probesets)]
            timings["diff"] = time.perf_counter() - tick
        audits = Audits(a=audit_a, b=audit_b)
    run = RunInfo(seed=config.seed, started_at=started_at, duration_s=time.perf_counter() - started,
                  device=str(model_a.device), versions=package_versions(),
                  settings={**config.to_dict(), "compare": compare.to_dict()}, timings_s=timings,
                  truncated_texts=survey.truncated_either, execution=executor.describe())
    return ComparisonResult(
        model_a=ModelInfo.from_dict(model_a.summary()), model_b=ModelInfo.from_dict(model_b.summary()), run=run,
        correlation=settings, layers_a=persistence(matching.a, compare.threshold, matching.diagonal),
        layers_b=persistence(matching.b, compare.threshold, matching.diagonal),
        changed=changed_neurons(matching, compare.threshold, compare.top_changed),
        histogram=histogram(matching), matches_a=match_table(matching.a), matches_b=match_table(matching.b),
        probesets=diffs, audits=audits, caveats=compare_caveats(settings, matching, model_a, model_b))


def persistence(side: SideMatch, threshold: float, diagonal: np.ndarray | None) -> list[LayerPersistence]:
    """Per layer: neurons with a partner beyond the baseline, the rest (gone from A / new in B), mean r."""
    rows = []
    for row, layer in enumerate(side.layers):
        kept = side.excess[row] > threshold
        entry = LayerPersistence(
            layer=layer, n_neurons=int(kept.size), persistent=int(kept.sum()), share_persistent=float(kept.mean()),
            unmatched=int((~kept).sum()), share_unmatched=float((~kept).mean()), mean_r=float(side.r[row].mean()),
            mean_baseline=float(side.baseline[row].mean()), mean_excess=float(side.excess[row].mean()))
        if diagonal is not None:
            entry.mean_diagonal_r = float(diagonal[row].mean())
            same = (side.partner_layer[row] == layer) & (side.partner_neuron[row] == np.arange(kept.size))
            entry.same_index_share = float(same.mean())
        rows.append(entry)
    return rows


def changed_neurons(matching: Matching, threshold: float, k: int) -> list[NeuronChange]:
    """The ``k`` neurons of A whose best partner in B correlates least (ties: lower excess)."""
    side = matching.a
    flat_r = side.r.reshape(-1)
    order = np.lexsort((side.excess.reshape(-1), flat_r))[:k]
    width = side.r.shape[1]
    found = []
    for flat in order:
        row, neuron = divmod(int(flat), width)
        layer = side.layers[row]
        partner_layer, partner = int(side.partner_layer[row, neuron]), int(side.partner_neuron[row, neuron])
        entry = NeuronChange(layer=layer, neuron=neuron, name=neuron_name(layer, neuron), partner_layer=partner_layer,
                             partner_neuron=partner, partner_name=neuron_name(partner_layer, partner),
                             r=float(side.r[row, neuron]), baseline=float(side.baseline[row, neuron]),
                             excess=float(side.excess[row, neuron]),
                             persistent=bool(side.excess[row, neuron] > threshold))
        if matching.diagonal is not None:
            entry.diagonal_r = float(matching.diagonal[row, neuron])
        found.append(entry)
    return found


def histogram(matching: Matching, bins: int = 40) -> CorrelationHistogram:
    """Model A's best-match r and baseline r (and diagonal r) on shared bins over [−0.2, 1]."""
    edges = np.linspace(-0.2, 1.0, bins + 1)

    def counts(values: np.ndarray) -> list[int]:
        return np.histogram(np.clip(values.reshape(-1), edges[0], edges[-1]), bins=edges)[0].tolist()

    result = CorrelationHistogram(edges=[round(float(e), 4) for e in edges], best=counts(matching.a.r),
                                  baseline=counts(matching.a.baseline))
    if matching.diagonal is not None:
        result.diagonal = counts(matching.diagonal)
    return result


def match_table(side: SideMatch) -> MatchTable:
    return MatchTable(layers=list(side.layers), partner_layer=side.partner_layer.tolist(),
                      partner_neuron=side.partner_neuron.tolist(), r=np.round(side.r, 4).tolist(),
                      baseline=np.round(side.baseline, 4).tolist())


def _flat_partners(side: SideMatch, other_layers: list[int], other_width: int) -> np.ndarray:
    """Each neuron's partner as a flat index into the other model's (layer × neuron) arrays."""
    layer_index = np.searchsorted(np.array(other_layers), side.partner_layer)
    return (layer_index * other_width + side.partner_neuron).reshape(-1)


def probeset_diff(model_a: Model, model_b: Model, probeset: ProbeSet, audit_a: AuditResult, audit_b: AuditResult,
                  matching: Matching, config: RunConfig, threshold: float, *, seed: int) -> ProbesetDiff:
    """One probe set in both models: flagged neurons side by side through the matching, and the output change."""
    if matching.a.layers != list(range(model_a.n_layers)) or matching.b.layers != list(range(model_b.n_layers)):
        raise ValueError("the audit diff needs every layer of both models in the matching")
    section_a = next(s for s in audit_a.probesets if s.name == probeset.name)
    section_b = next(s for s in audit_b.probesets if s.name == probeset.name)
    runs = [_harvests(model, probeset, config) for model in (model_a, model_b)]
    if probeset.kind == "concept":
        stats = [concept_selectivity(r[0].pooled(config.pooling), probeset.labels) for r in runs]
        values = [s.auroc for s in stats]
        flagged = [(s.q_value < ALPHA) & (s.strength >= STRONG) for s in stats]
        statistic = "AUROC (positive vs negative texts)"
        definition = "q < 0.05 and AUROC >= 0.8 or <= 0.2"
    else:
        stats = [group_selectivity(np.stack([a.pooled(config.pooling) for a in r]), list(probeset.groups))
                 for r in runs]
        values = [np.abs(s.effect).max(axis=0) for s in stats]
        flagged = [((s.q_value < ALPHA) & (np.abs(s.effect) >= MIN_EFFECT)).any(axis=0) for s in stats]
        statistic = "strongest paired effect |d_z| over contrasts"
        definition = f"q < 0.05 and |d_z| >= {MIN_EFFECT} in some contrast"
    partner_a = _flat_partners(matching.a, matching.b.layers, model_b.neurons_per_layer)
    partner_b = _flat_partners(matching.b, matching.a.layers, model_a.neurons_per_layer)
    counts = flag_diff(flagged[0], flagged[1], partner_a, partner_b)
    reported_a = _reported(section_a, model_a.neurons_per_layer)
    reported_b = _reported(section_b, model_b.neurons_per_layer)

    def pair(side: str, flat: int) -> FlaggedPair:
        own, other = (0, 1) if side == "a" else (1, 0)
        sidematch = matching.a if side == "a" else matching.b
        partners, widths = (partner_a, (model_a.neurons_per_layer, model_b.neurons_per_layer)) if side == "a" \
            else (partner_b, (model_b.neurons_per_layer, model_a.neurons_per_layer))
        partner = int(partners[flat])
        layer, neuron = divmod(flat, widths[0])
        partner_layer, partner_neuron = divmod(partner, widths[1])
        value, partner_value = float(values[own][flat]), float(values[other][partner])
        return FlaggedPair(side=side, name=neuron_name(layer, neuron), layer=layer, neuron=neuron, value=value,
                           partner_name=neuron_name(partner_layer, partner_neuron), partner_layer=partner_layer,
                           partner_neuron=partner_neuron, partner_value=partner_value,
                           delta=partner_value - value if side == "a" else value - partner_value,
                           r=float(sidematch.r.reshape(-1)[flat]), excess=float(sidematch.excess.reshape(-1)[flat]),
                           persistent=bool(sidematch.excess.reshape(-1)[flat] > threshold),
                           partner_flagged=bool(flagged[other][partner]))

    pairs_a = [pair("a", flat) for flat in reported_a]
    new = counts.became_flagged[np.argsort(-np.abs(values[1][counts.became_flagged] -
                                                   (0.5 if probeset.kind == "concept" else 0.0)), kind="stable")]
    diff = ProbesetDiff(
        name=probeset.name, kind=probeset.kind, statistic=statistic, flagged_definition=definition,
        n_flagged_a=counts.n_flagged_a, n_flagged_b=counts.n_flagged_b, overlap=counts.overlap,
        share_overlap=counts.overlap / counts.n_flagged_a if counts.n_flagged_a else None,
        became_flagged=int(counts.became_flagged.size), stopped_flagged=int(counts.stopped_flagged.size),
        mean_abs_delta=float(np.mean([abs(p.delta) for p in pairs_a])) if pairs_a else 0.0,
        validated_a=_validated(section_a), validated_b=_validated(section_b), pairs_a=pairs_a,
        pairs_b=[pair("b", flat) for flat in reported_b],
        new_in_b=[pair("b", int(flat)) for flat in new[:config.top_k]])
    if probeset.kind == "paired" and model_a.kind != model_b.kind:
        diff.output_not_comparable = (f"model A is {_kind_words(model_a)} and model B {_kind_words(model_b)}: "
                                      "output-level scores (log-likelihood gaps, embedding shifts) are defined "
                                      "for models of the same kind only")
    elif probeset.kind == "paired":
        causal = model_a.kind == "causal-lm"
        key = "loglik" if causal else "embedding"
        outputs = [np.stack([acts.outputs[key] for acts in r]) for r in runs]
        if outputs[0].shape[:2] == outputs[1].shape[:2] and (causal or outputs[0].shape == outputs[1].shape):
            plan = None if causal or probeset.compares_languages else control_plan(model_a, probeset)
            if plan is not None:  # encoders: the counterfactual sensitivity excess, on A's control texts in both
                excess = [excess_per_item(model, plan, out, max_length=_length(model, config))
                          for model, out in ((model_a, outputs[0]), (model_b, outputs[1]))]
                usable = ~np.isnan(excess[0]).any(axis=0)
                change = output_change(excess[0][:, usable], excess[1][:, usable], causal=False, seed=seed,
                                       n_resamples=config.bootstrap_resamples, gap=excess_pair_gap)
                metric = ("largest excess embedding shift of the group swap over matched control swaps "
                          f"(model A's control texts in both models, {int(usable.sum())} items)")
            else:
                change = output_change(outputs[0], outputs[1], causal=causal, seed=seed,
                                       n_resamples=config.bootstrap_resamples)
                metric = ("largest |mean log-likelihood gap| between two groups" if causal
                          else "largest 1 − mean cosine between an item's versions in two groups")
            diff.output = OutputChange(metric=metric, **change)
    return diff


def _harvests(model: Model, probeset: ProbeSet, config: RunConfig):
    """The audit's own harvests of this set (read back from the cache the audit just filled)."""
    if probeset.kind == "concept":
        return [cached_harvest(model, probeset.texts, cache_dir=config.cache_dir, batch_size=config.batch_size,
                               max_length=_length(model, config), progress=False)]
    from .paired import uses_lape

    return [cached_harvest(model, [item[group] for item in probeset.items], cache_dir=config.cache_dir,
                           batch_size=config.batch_size, max_length=_length(model, config),
                           active_counts=uses_lape(probeset), outputs=True, progress=False)
            for group in probeset.groups]


def _length(model: Model, config: RunConfig) -> int:
    return used_length(model, config.max_length)


def _kind_words(model: Model) -> str:
    return "a causal LM" if model.kind == "causal-lm" else "an encoder"


def _reported(section: ConceptSection | PairedSection, width: int) -> list[int]:
    entries = section.neurons if isinstance(section, ConceptSection) else section.disparity.neurons
    return [entry.layer * width + entry.neuron for entry in entries]


def _validated(section: ConceptSection | PairedSection) -> bool | None:
    ablation = getattr(section, "ablation", None)
    if not ablation or not hasattr(ablation, "p_value"):
        return None
    if isinstance(getattr(ablation, "validated", None), bool):  # corrected p < 0.05, expected direction
        return bool(ablation.validated)
    return bool(ablation.p_value <= section.alpha)


def compare_caveats(settings: CorrelationSettings, matching: Matching, model_a: Model, model_b: Model) -> list[str]:
    """What a reader must know before trusting the matching."""
    notes = [
        "Correlation is not identity: a neuron whose best partner correlates highly computes something similar on "
        f"this corpus ({settings.n_texts} texts, {settings.n_samples} samples); on other text the two may differ.",
        "The rotation baseline mixes standardised neurons; its covariances use every sample and the mixtures' "
        f"variances every {settings.baseline_stride}th ({settings.n_baseline_samples} samples). Persistence means "
        f"excess correlation (best r minus baseline) above {settings.threshold}; even identical models leave a "
        "few neurons below it, those that load heavily on the layer's dominant directions.",
    ]
    if settings.precision == "bfloat16":
        notes.append("Samples were rounded to bfloat16 (8 significant bits) after centring, before their products "
                     "(float32 accumulation, float64 sums): r moves by about 1e-3 at most against float32 "
                     "(--precision float32), far less than its sampling error on this corpus (about "
                     f"{1 / max(settings.n_samples, 1) ** 0.5:.3f}).")
    if settings.alignment == "texts":
        notes.append("The models tokenize differently, so samples are whole texts (per-text mean activations): "
                     "neurons are compared on what they do across texts, not token by token, and with few texts "
                     "high correlations arise by chance more easily.")
    if model_a.kind != model_b.kind:
        notes.append(f"Model A is {_kind_words(model_a)} and model B {_kind_words(model_b)}: neurons are matched and "
                     "audits diffed, but output-level scores (sentence log-likelihoods, embedding shifts) mean "
                     "different things in the two, so they are marked not comparable.")
    if settings.truncated_texts and any(settings.truncated_texts):
        a, b = settings.truncated_texts
        notes.append(f"Corpus texts longer than the token length used were cut: {a} in model A (at "
                     f"{settings.max_length_used[0]} tokens), {b} in model B (at {settings.max_length_used[1]}).")
    if settings.layer_mode != "all":
        notes.append(f"Only the layer pairs {settings.layer_pairs} were correlated ({settings.layer_mode}); a "
                     "neuron that moved to a distant layer shows as gone and new. --layers all compares every pair.")
    return notes
