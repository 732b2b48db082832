"""Validate flagged neurons by ablation: intervene on them, measure the model's outputs, and compare
with random neuron sets of the same size and per-layer counts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .ablation import (cosine_shift, disparity_change_ci, embedding_gap, loglik_gap, null_comparison,
                       null_neuron_sets, separability, specificity)
from .errors import AuditInputError, read_input_text
from .harvest import Activations
from .interventions import Intervention, aura_scale, make_intervention, measure
from .models import Model
from .probes import ProbeSet
from .selectivity import Selectivity

if TYPE_CHECKING:
    from .pipeline import RunConfig

REFERENCE_FILE = Path(__file__).resolve().parent / "data" / "reference.txt"


def load_reference(path: str | Path | None = None) -> list[str]:
    """The general reference corpus: one text per line (the bundled everyday sentences by default)."""
    path = Path(path) if path else REFERENCE_FILE
    lines = [line.strip() for line in read_input_text(path, "reference corpus").splitlines()]
    lines = [line for line in lines if line]
    if len(lines) < 10:
        raise AuditInputError(f"--reference: {path}: needs at least 10 non-empty lines, got {len(lines)}")
    return lines


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


def _interventions(target: np.ndarray, mode: str, n_neurons: int, config: "RunConfig", *, means: np.ndarray,
                   scales: np.ndarray, seed: int) -> list[Intervention]:
    """The target intervention first, then the null sets (same layers; dampen uses the target's scales)."""
    sets = [target, *null_neuron_sets(target, n_neurons, n_sets=config.null_sets, seed=seed)]
    return [make_intervention(neurons, mode, means=means, scales=scales) for neurons in sets]


def _sample(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=min(n, k), replace=False))


def concept_ablation(model: Model, probeset: ProbeSet, acts: Activations, result: Selectivity,
                     config: "RunConfig", reference: Sequence[str], *, seed: int) -> dict[str, Any]:
    """Ablate the top positively selective neurons; effects on positives and negatives vs the null."""
    n_neurons = model.neurons_per_layer
    ranked = [flat for flat in result.ranking() if result.auroc[flat] > 0.5]
    target = choose_targets(ranked, n_neurons, k=config.ablate_k, per_layer=config.ablate_per_layer)
    labels = probeset.labels
    means = acts.mean[~labels].reshape(int((~labels).sum()), -1).mean(axis=0)
    interventions = _interventions(target, config.ablation_mode, n_neurons, config, means=means,
                                   scales=aura_scale(result.auroc[target]), seed=seed)
    rng = np.random.default_rng(seed)
    positive = np.flatnonzero(labels)[_sample(int(labels.sum()), config.ablation_texts, rng)]
    negative = np.flatnonzero(~labels)[_sample(int((~labels).sum()), config.ablation_texts, rng)]
    texts = probeset.texts
    m = measure(model, [texts[i] for i in (*positive, *negative)], interventions, batch_size=config.batch_size,
                max_length=config.max_length)
    pos, neg = np.arange(len(positive)), np.arange(len(positive), len(positive) + len(negative))
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
    ratio = specificity(on_pos, on_neg)
    metrics["specificity"] = null_comparison(np.where(np.isfinite(ratio), ratio, np.finfo(float).max))
    metrics["specificity"]["effect"] = float(ratio[0]) if np.isfinite(ratio[0]) else None
    headline = metrics[primary]
    return {"neurons": interventions[0].pairs(n_neurons), "mode": config.ablation_mode, "metric": primary,
            "effect": headline["effect"], "null": headline["null"], "z": headline["z"],
            "p_value": headline["p_value"], "specificity": metrics["specificity"]["effect"],
            "metrics": metrics,
            "scales": interventions[0].scale, "offsets": interventions[0].offset,
            "evaluated": {"n_positive": len(positive), "n_negative": len(negative), "seed": seed},
            "collateral": collateral_cost(model, reference, interventions[0], config, seed=seed)}


def collateral_cost(model: Model, reference: Sequence[str], intervention: Intervention, config: "RunConfig", *,
                    seed: int) -> dict[str, Any]:
    """What the intervention costs on general text: Δ perplexity (causal) or mean embedding shift (encoders)."""
    rows = _sample(len(reference), config.reference_texts, np.random.default_rng(seed + 1))
    m = measure(model, [reference[i] for i in rows], [intervention], batch_size=config.batch_size,
                max_length=config.max_length)
    if model.kind == "causal-lm":
        clean, ablated = float(np.exp(-m.loglik.mean())), float(np.exp(-m.loglik_ablated[0].mean()))
        return {"metric": "perplexity", "n_texts": len(rows), "clean": clean, "ablated": ablated,
                "change": ablated - clean, "relative_change": ablated / clean - 1.0,
                "kl": float(m.kl[0].mean())}
    shift = cosine_shift(m.embedding, m.embedding_ablated[0])
    return {"metric": "embedding shift (1 - cosine)", "n_texts": len(rows), "mean": float(shift.mean()),
            "max": float(shift.max())}


def paired_ablation(model: Model, probeset: ProbeSet, runs: Sequence[Activations], ranked: Sequence[int],
                    aurocs: Sequence[float], config: "RunConfig", *, seed: int) -> dict[str, Any]:
    """Ablate the top group-selective neurons; how the output-level disparity changes, vs the null."""
    n_neurons, groups = model.neurons_per_layer, list(probeset.groups)
    target = choose_targets(ranked, n_neurons, k=config.ablate_k, per_layer=config.ablate_per_layer)
    scale_of = dict(zip((int(r) for r in ranked), aurocs))
    means = np.concatenate([acts.mean.reshape(acts.mean.shape[0], -1) for acts in runs]).mean(axis=0)
    interventions = _interventions(target, config.ablation_mode, n_neurons, config, means=means,
                                   scales=aura_scale([scale_of[int(t)] for t in target]), seed=seed)
    items = _sample(len(probeset.items), config.ablation_texts, np.random.default_rng(seed))
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
    return {"neurons": interventions[0].pairs(n_neurons), "mode": config.ablation_mode, "metric": metric,
            "disparity_clean": before, "disparity_ablated": before + changes[0], "effect": changes[0],
            "ci95": [low, high], "null": comparison["null"], "z": comparison["z"],
            "p_value": comparison["p_value"],
            "p_value_meaning": "share of random sets that reduce the disparity at least as much",
            "evaluated": {"n_items": len(items), "seed": seed}}
