"""Polysemanticity evidence for a reported neuron, and the verdict a report states with its reasons.

Pure functions over numbers: selectivity for the other audited concepts, how strongly the neuron fires
on a general reference corpus (assumed free of the audited concepts) relative to its concept texts,
and token-level density and kurtosis.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

ELSEWHERE_AUROC = 0.8  # selective for another audited concept at or above this AUROC
TOP_CONTEXTS = 10  # strongest reference contexts examined
POLY_SHARE = 0.5  # this share of them at concept strength: polysemantic
MONO_SHARE = 0.2  # at most this share, and ...
MONO_RATE = 0.05  # ... at most this share of all reference texts at concept strength: looks monosemantic

MONOSEMANTIC, POLYSEMANTIC, INSUFFICIENT = "looks monosemantic", "polysemantic", "insufficient evidence"


def reference_firing(reference_max: np.ndarray, concept_max: np.ndarray, *, top: int = TOP_CONTEXTS) -> dict:
    """How a neuron fires on general text relative to its concept texts.

    ``concept_max``: its per-text max on the texts it is selective for; the threshold is their median.
    Returns the share of its ``top`` strongest reference contexts at or above that threshold (they are
    unrelated to the concept when the reference corpus is concept-free) and the share of all reference texts.
    """
    threshold = float(np.median(concept_max))
    strongest = np.sort(np.asarray(reference_max, dtype=float))[::-1][:top]
    return {"threshold": threshold, "unrelated_share": float((strongest >= threshold).mean()),
            "reference_rate": float((np.asarray(reference_max) >= threshold).mean()),
            "top_reference_activation": float(strongest[0])}


def selective_elsewhere(other_aurocs: Mapping[str, float], direction: str) -> list[str]:
    """Reasons, one per other audited concept this neuron is selective for (AUROC >= ELSEWHERE_AUROC)."""
    reasons = []
    for name, value in sorted(other_aurocs.items()):
        strength = value if direction == "positive" else 1.0 - value
        if strength >= ELSEWHERE_AUROC:
            reasons.append(f"also selective for '{name}' (AUROC {value:.2f})")
    return reasons


def verdict(other_aurocs: Mapping[str, float], firing: dict | None, *, direction: str = "positive",
            unjudged_reason: str | None = None) -> tuple[str, list[str]]:
    """Verdict and reasons. ``other_aurocs``: this neuron's AUROC for each other audited concept;
    ``firing``: :func:`reference_firing`, or None when no concept-free reference corpus can judge it
    (``unjudged_reason`` says why)."""
    reasons = selective_elsewhere(other_aurocs, direction)
    poly = bool(reasons)
    if firing is not None:
        strong = round(firing["unrelated_share"] * TOP_CONTEXTS)
        if firing["unrelated_share"] >= POLY_SHARE:
            poly = True
            reasons.append(f"{strong} of its {TOP_CONTEXTS} strongest contexts in the general reference corpus "
                           "activate it as much as its typical concept text")
    if poly:
        return POLYSEMANTIC, reasons
    if firing is None:
        reason = unjudged_reason or "no reference corpus was examined"
        if not other_aurocs:
            reason += " and no other concept was audited"
        return INSUFFICIENT, [reason]
    rate = f"fires at concept strength on {100 * firing['reference_rate']:.1f}% of general reference texts"
    others = (f"not selective for the {len(other_aurocs)} other audited concept(s)" if other_aurocs
              else "no other concept was audited")
    if firing["unrelated_share"] <= MONO_SHARE and firing["reference_rate"] <= MONO_RATE:
        return MONOSEMANTIC, [rate, others]
    return INSUFFICIENT, [rate + " (between the monosemantic and polysemantic thresholds)", others]


def vocabulary_hint(kurtosis: float, skew: float) -> str | None:
    """Universal-neurons reading of W_out·W_U: heavy-tailed and skewed means prediction or suppression."""
    if kurtosis < 10:
        return None
    return "prediction neuron" if skew > 0 else "suppression neuron"


SIMILAR = 0.4  # a token this similar (cosine) to one of the concept's top tokens counts as the same concept


def explained_verdict(other_aurocs: Mapping[str, float], strong: list[dict], uncovered: list[dict], *,
                      examined: int, direction: str = "positive") -> tuple[str, list[str]]:
    """The verdict rebuilt on the neuron's explanation.

    ``strong``: its strongest general-text contexts at concept strength (of ``examined``); ``uncovered``:
    those its graph does not predict and whose activating token is unlike its concept tokens (each with
    ``token`` and ``window``). Polysemantic when selective for another audited concept or when at least
    half the examined contexts are strong and unexplained; looks monosemantic when at most a fifth are.
    """
    reasons = selective_elsewhere(other_aurocs, direction)
    poly = bool(reasons)
    share = len(uncovered) / examined if examined else 0.0
    named = "; ".join(f"'{c['token']}' in \"{c['window']}\"" for c in uncovered[:3])
    if uncovered and share >= POLY_SHARE:
        poly = True
        reasons.append(f"{len(uncovered)} of its {examined} strongest general-text contexts fire at concept "
                       f"strength on tokens its explanation does not cover: {named}")
    covered = len(strong) - len(uncovered)
    if poly:
        return POLYSEMANTIC, reasons
    explained = (f"{covered} of {len(strong)} strong general-text contexts are explained by its graph or concept "
                 "tokens" if strong else "no general-text context fires at concept strength")
    others = (f"not selective for the {len(other_aurocs)} other audited concept(s)" if other_aurocs
              else "no other concept was audited")
    if share <= MONO_SHARE:
        reasons = [explained, others] + ([f"unexplained: {named}"] if uncovered else [])
        return MONOSEMANTIC, reasons
    return INSUFFICIENT, [f"{len(uncovered)} of {examined} strongest general-text contexts are unexplained "
                          f"(between the thresholds): {named}", others]
