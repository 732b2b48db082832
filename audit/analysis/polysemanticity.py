"""Polysemanticity evidence for a reported neuron, and the verdict a report states with its reasons.

Pure functions over numbers: selectivity for the other audited concepts, how strongly the neuron fires
on a general reference corpus (assumed free of the audited concepts) relative to its concept texts,
and token-level density and kurtosis.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

FIRE = 0.5  # "fires": at least this share of the neuron's strongest concept activation (as the graphs)
ELSEWHERE_AUROC = 0.8  # selective for another audited concept at or above this AUROC
TOP_CONTEXTS = 10  # strongest reference contexts examined
POLY_SHARE = 0.5  # this share of them at concept strength: polysemantic
MONO_SHARE = 0.2  # at most this share, and ...
MONO_RATE = 0.05  # ... at most this share of all reference texts at concept strength: looks monosemantic

MONOSEMANTIC, POLYSEMANTIC, INSUFFICIENT = "looks monosemantic", "polysemantic", "insufficient evidence"


def reference_firing(reference_max: np.ndarray, concept_max: np.ndarray, *, top: int = TOP_CONTEXTS) -> dict:
    """How a neuron fires on general text relative to its concept texts.

    ``concept_max``: its per-text max on the texts it is selective for; the threshold is the one firing line
    of the tool, :data:`FIRE` of their maximum (the line the graphs and explanation scores use).
    Returns the share of its ``top`` strongest reference contexts at or above that threshold (they are
    unrelated to the concept when the reference corpus is concept-free) and the share of all reference texts.
    """
    threshold = FIRE * float(np.max(concept_max))
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
                           "fire at or above half its strongest concept activation")
    if poly:
        return POLYSEMANTIC, reasons
    if firing is None:
        reason = unjudged_reason or "no reference corpus was examined"
        if not other_aurocs:
            reason += " and no other concept was audited"
        return INSUFFICIENT, [reason]
    rate = (f"fires at or above half its strongest concept activation on {100 * firing['reference_rate']:.1f}% "
            "of general reference texts")
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
POLY_RATE = 0.03  # general lines firing on something the explanation does not cover: at least this share, and …
POLY_MIN = 3  # … at least this many of them: a second meaning
COVERED_SHARE = 0.8  # looks monosemantic only when at least this share of general lines above the line is covered


def firing_line_verdict(other_aurocs: Mapping[str, float], above: list[dict], n_lines: int, *,
                        coherent: bool | None, function_peaks: bool, direction: str = "positive"
                        ) -> tuple[str, list[str]]:
    """The verdict on one firing line (:data:`FIRE` of the neuron's strongest concept activation).

    ``above``: the sampled general-text lines (of ``n_lines``) with a token at or above the line, each with
    ``covered`` (its explanation predicts that firing) and ``word`` / ``window``; ``coherent``: whether its
    content words form a coherent group (None: fewer than two content words); ``function_peaks``: its peaks
    are on function words. Polysemantic when selective for another audited concept, or when at least
    :data:`POLY_RATE` of general lines (and :data:`POLY_MIN` lines) fire on something the explanation does not
    cover; looks monosemantic only with a coherent content-word explanation that covers at least
    :data:`COVERED_SHARE` of the general lines above the line; otherwise insufficient evidence, with reasons.
    """
    reasons = selective_elsewhere(other_aurocs, direction)
    uncovered = [c for c in above if not c["covered"]]
    rate = len(uncovered) / n_lines if n_lines else 0.0
    named = "; ".join(f"'{c['word']}' in \"{c['window']}\"" for c in uncovered[:3])
    if len(uncovered) >= POLY_MIN and rate >= POLY_RATE:
        reasons.append(f"{len(uncovered)} of {n_lines} sampled general-text lines ({100 * rate:.0f}%) fire at or "
                       f"above half its strongest concept activation on words its explanation does not cover: {named}")
    if reasons:
        return POLYSEMANTIC, reasons
    share = 1 - len(uncovered) / len(above) if above else 1.0
    fired = (f"{len(above)} of {n_lines} sampled general-text lines fire at or above half its strongest concept "
             f"activation; its explanation covers {len(above) - len(uncovered)} of them")
    others = (f"not selective for the {len(other_aurocs)} other audited concept(s)" if other_aurocs
              else "no other concept was audited")
    if coherent and not function_peaks and share >= COVERED_SHARE:
        return MONOSEMANTIC, [fired, others]
    why = []
    if function_peaks:
        why.append("its strongest activations are on function words, not on a word group with a meaning")
    elif coherent is None:
        why.append("too few content words to judge a shared meaning")
    elif not coherent:
        why.append("its content words have no clear shared meaning")
    if share < COVERED_SHARE:
        why.append(fired + (f" (uncovered: {named})" if named else ""))
    else:
        why.append(fired)
    return INSUFFICIENT, why + [others]
