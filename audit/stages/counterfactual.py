"""Encoders' counterfactual sensitivity: control swaps of each item's ordinary words, matched to the
similarity of its swapped group words, and the group swap's embedding shift beyond theirs (see
:mod:`audit.analysis.counterfactual`). The audit reports it; ablation reports how the flagged neurons move it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Sequence

import numpy as np

from ..analysis import counterfactual
from ..analysis.ablation import cosine_shift
from ..errors import AuditInputError
from ..model.harvest import sentence_embeddings
from ..model.loading import Model
from ..model.similarity import embedding_vectors
from ..probes.probeset import ProbeSet

CONTROL_CANDIDATES = 60  # nearest words searched for a control substitute of the group words' similarity
EXAMPLES = 8  # control swaps shown in results and the report
METRIC = "embedding shift (1 − cosine) of the group swap beyond a matched control swap"
CONTROL = ("each item's longest shared words (up to 2) swapped in every version for the word whose similarity to "
           "them in the model's input embeddings is closest to the swapped group words' own (no forms of the "
           "word); control shift = mean over swaps and versions")


@dataclass
class ControlPlan:
    """The control texts of a paired set: ``texts[k * n_groups + g]`` is group g's version of item
    ``owners[k]`` with control swap k (``swaps[k]``: word, substitute, similarity, target)."""

    n_groups: int
    owners: np.ndarray
    texts: list[str]
    swaps: list[dict[str, Any]]

    def for_items(self, items: Sequence[int]) -> ControlPlan:
        """The swaps of ``items`` only, their owners renumbered to positions in ``items``."""
        position = {int(item): k for k, item in enumerate(items)}
        keep = [k for k, owner in enumerate(self.owners) if int(owner) in position]
        texts = [self.texts[k * self.n_groups + g] for k in keep for g in range(self.n_groups)]
        return ControlPlan(self.n_groups, np.array([position[int(self.owners[k])] for k in keep], dtype=int),
                           texts, [self.swaps[k] for k in keep])

    def control_shift(self, originals: np.ndarray, controls: np.ndarray, n_items: int) -> np.ndarray:
        """Per item, the mean over its swaps and versions of 1 − cosine between a version (``originals``:
        groups × items × d) and its control (``controls``: texts × d, in plan order); NaN without a swap."""
        controls = controls.reshape(len(self.owners), self.n_groups, -1)
        shifts = np.stack([cosine_shift(originals[g][self.owners], controls[:, g])
                           for g in range(self.n_groups)]).mean(axis=0)
        found = np.full(n_items, np.nan)
        for item in np.unique(self.owners):
            found[item] = shifts[self.owners == item].mean()
        return found

    def excess(self, originals: np.ndarray, controls: np.ndarray) -> np.ndarray:
        """Group pairs × items: each group swap's embedding shift minus the item's control shift (NaN for an
        item without a swap); arguments as for :meth:`control_shift`."""
        control = self.control_shift(originals, controls, originals.shape[1])
        return np.stack([cosine_shift(originals[a], originals[b]) - control
                         for a, b in combinations(range(self.n_groups), 2)])


def excess_per_item(model: Model, plan: ControlPlan, originals: np.ndarray, *, max_length: int) -> np.ndarray:
    """Group pairs × items: the group swap's embedding shift minus the item's control shift in ``model``
    (``originals``: groups × items × d, the model's own embeddings of the versions); NaN without a swap."""
    return plan.excess(originals, sentence_embeddings(model, plan.texts, max_length=max_length))


def control_plan(model: Model, probeset: ProbeSet) -> ControlPlan | None:
    """Control swaps for every item (None when the model's vocabulary has too few whole words, or no item
    shares a word that has a usable substitute)."""
    try:
        vectors = embedding_vectors(model)
    except AuditInputError:
        return None
    groups = list(probeset.groups)

    def similar(a: str, b: str) -> float | None:
        left, right = vectors.vector(a), vectors.vector(b)
        return None if left is None or right is None else float(left @ right)

    versions = [[item[g] for g in groups] for item in probeset.items]
    targets = [counterfactual.group_word_similarity(v, similar) for v in versions]
    known = [t for t in targets if t is not None]
    fallback = float(np.median(known)) if known else 0.5
    texts, owners, swaps = [], [], []
    for i, versions_i in enumerate(versions):
        target = fallback if targets[i] is None else targets[i]
        for word, substitute, score in counterfactual.control_edits(
                versions_i, lambda w: vectors.neighbours(w, CONTROL_CANDIDATES), target):
            texts += [counterfactual.replace_word(v, word, substitute) for v in versions_i]
            owners.append(i)
            swaps.append({"word": word, "substitute": substitute, "similarity": score, "target": target})
    if not owners:
        return None
    return ControlPlan(len(groups), np.array(owners, dtype=int), texts, swaps)


def counterfactual_sensitivity(model: Model, probeset: ProbeSet, originals: np.ndarray, group_shift: np.ndarray,
                               pairs: Sequence[tuple[str, str]], *, seed: int, n_resamples: int,
                               max_length: int) -> dict[str, Any] | None:
    """Encoders: the group swap's embedding shift (``group_shift``, pairs × items, from the audit's own
    embeddings ``originals``: groups × items × d) against the control swaps' shift, per group pair with
    bootstrap CIs; None without a control plan. Only the control texts are run."""
    plan = control_plan(model, probeset)
    if plan is None:
        return None
    controls = sentence_embeddings(model, plan.texts, max_length=max_length)
    control = plan.control_shift(originals, controls, len(probeset.items))
    rows = counterfactual.sensitivity_rows(group_shift, control, pairs, seed=seed, n_resamples=n_resamples)
    return {"metric": METRIC, "control": CONTROL, "n_items": int((~np.isnan(control)).sum()),
            "n_controls": len(plan.owners), "rows": rows,
            "control_similarity": float(np.mean([s["similarity"] for s in plan.swaps])),
            "target_similarity": float(np.mean([s["target"] for s in plan.swaps])),
            "examples": plan.swaps[:EXAMPLES]}
