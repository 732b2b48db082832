"""Per-neuron evidence for the report: polysemanticity, reference-corpus contexts, activation histograms,
and (causal LMs) what the neuron writes to the vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..analysis.neuron_classes import CLASSES, ClassRules, classify, counts_per_layer
from ..analysis.polysemanticity import reference_firing, verdict
from ..model.cache import cached_vocabulary_statistics
from ..model.harvest import Activations, exemplars
from ..model.loading import Model
from ..model.vocab import final_norm_scale, vocabulary_effects
from ..results.contract import Histogram, NeuronClasses, NeuronEntry, Polysemanticity, Vocabulary

HISTOGRAM_BINS = 20


@dataclass
class Responses:
    """One reported neuron's per-text max activations on the side it prefers and on the other side."""

    preferred: np.ndarray
    other: np.ndarray
    labels: tuple[str, str]


def histogram(responses: Responses) -> Histogram:
    """Counts of per-text max activation on both sides, on shared bins."""
    values = np.concatenate([responses.preferred, responses.other])
    low, high = float(values.min()), float(values.max())
    edges = np.linspace(low, high if high > low else low + 1.0, HISTOGRAM_BINS + 1)
    counts = {responses.labels[0]: np.histogram(responses.preferred, edges)[0],
              responses.labels[1]: np.histogram(responses.other, edges)[0]}
    return Histogram(edges=edges, sides=list(responses.labels), extra=counts)


NEGATIVE_NOTE = ("it fires less on the concept than on ordinary text, so strong firing on general text says "
                 "nothing about unrelated features")
GROUP_NOTE = ("the reference corpus is free of the audited concepts, not of this set's groups, so strong firing "
              "there cannot show unrelated features; its reference contexts are listed for reading only")


def neuron_classes(model: Model, *, cache_dir: str | None = None,
                   rules: ClassRules = ClassRules()) -> tuple[NeuronClasses, np.ndarray] | None:
    """Causal LMs: every neuron's class from W_out·W_U, with counts per layer; None for encoders."""
    statistics = cached_vocabulary_statistics(model, cache_dir=cache_dir)
    if statistics is None:
        return None
    labels = classify(statistics["kurtosis"], statistics["skew"], statistics["variance"], statistics["norm"],
                      rules=rules)
    per_layer = counts_per_layer(labels)
    record = NeuronClasses(rules=rules.to_dict(), n_neurons=int(labels.size),
                           totals={name: sum(per_layer[name]) for name in CLASSES}, per_layer=per_layer,
                           final_norm_folded=final_norm_scale(model) is not None)
    return record, labels


def attach_evidence(model: Model, entries: Sequence[tuple[NeuronEntry, str, Responses]],
                    aurocs: Mapping[str, np.ndarray], reference: Sequence[str] | None,
                    reference_acts: Activations | None, *, n_contexts: int = 5,
                    classes: np.ndarray | None = None) -> None:
    """Add ``polysemanticity``, ``histogram`` and (causal LMs) ``vocabulary`` to each reported neuron entry.

    ``entries``: (neuron entry, the probe set it was reported for, its responses); ``aurocs``: every
    concept set's AUROC per flat neuron; ``classes``: (layers × neurons) neuron-class labels, causal LMs.
    """
    stats = reference_acts.token_stats() if reference_acts is not None else None
    vocabulary = vocabulary_effects(model, [(e.layer, e.neuron) for e, _, _ in entries])
    for entry, owner, responses in entries:
        layer, neuron = entry.layer, entry.neuron
        flat = layer * model.neurons_per_layer + neuron
        others = {name: float(values[flat]) for name, values in aurocs.items() if name != owner}
        evidence: dict[str, Any] = {"other_concepts": others}
        firing = None
        if reference_acts is not None and reference is not None:
            firing = reference_firing(reference_acts.max[:, layer, neuron], responses.preferred)
            evidence.update(firing)
            evidence["density"] = float(stats["density"][layer, neuron])
            evidence["kurtosis"] = float(stats["kurtosis"][layer, neuron])
            evidence["reference_contexts"] = exemplars(model, reference, reference_acts, layer, neuron, k=n_contexts)
        direction = getattr(entry, "direction", "positive")
        # judged only for concept sets (the reference corpus is concept-free) and neurons that fire on the concept
        judged = firing if owner in aurocs and direction == "positive" else None
        note = None
        if firing is not None and judged is None:
            note = GROUP_NOTE if owner not in aurocs else NEGATIVE_NOTE
        label, reasons = verdict(others, judged, direction=direction, unjudged_reason=note)
        evidence.update(verdict=label, polysemantic=label == "polysemantic", reasons=reasons)
        words = vocabulary.get((layer, neuron))
        if words is not None and classes is not None:
            words = {**words, "neuron_class": classes[layer, neuron] or None}
        entry.attach(polysemanticity=Polysemanticity.from_dict(evidence), histogram=histogram(responses),
                     vocabulary=Vocabulary.from_dict(words) if words is not None else None)
