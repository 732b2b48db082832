"""The concept-set part of an audit: which neurons separate positive from negative texts."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..analysis.selectivity import ALPHA, Selectivity, bootstrap_auroc_ci, shuffled_control
from ..config import RunConfig
from ..model.harvest import Activations, exemplars
from ..model.loading import Model
from ..model.sites import neuron_name
from ..probes.probeset import ProbeSet
from ..results.contract import AurocHistogram, ConceptNeuron, ConceptSection, ConceptSummary, Control, Exemplar


def section_identity(probeset: ProbeSet, runs: Sequence[Activations], pooling: str) -> dict[str, Any]:
    """The section fields every probe set shares: the set's identity and size, and what the harvest saw."""
    return {**probeset.summary(), "truncated_texts": sum(int(acts.truncated.sum()) for acts in runs),
            "n_tokens": sum(int(acts.n_tokens.sum()) for acts in runs), "pooling": pooling}


def concept_section(model: Model, probeset: ProbeSet, acts: Activations, result: Selectivity, config: RunConfig,
                    *, seed: int) -> ConceptSection:
    """Selectivity of every neuron for one concept set, with the top ``top_k`` neurons' evidence."""
    responses = acts.pooled(config.pooling)
    labels = probeset.labels
    control = shuffled_control(responses, labels, seed=seed)
    top = result.ranking()[:config.top_k]
    columns = responses[:, top]  # the reported neurons first: never a copy of every neuron's responses
    low, high = bootstrap_auroc_ci(columns[labels], columns[~labels], seed=seed,
                                   n_resamples=config.bootstrap_resamples)
    n_neurons = model.neurons_per_layer
    texts = probeset.texts
    neurons = []
    for rank, flat in enumerate(top):
        layer, neuron = divmod(int(flat), n_neurons)
        found = [Exemplar.from_dict(example) for example in exemplars(model, texts, acts, layer, neuron,
                                                                      k=config.n_exemplars)]
        for example in found:
            example.label = "positive" if labels[example.text_index] else "negative"
        neurons.append(ConceptNeuron(
            layer=layer, neuron=neuron, name=neuron_name(layer, neuron), rank=rank + 1,
            direction="positive" if result.auroc[flat] >= 0.5 else "negative",
            auroc=result.auroc[flat], auroc_ci95=[low[rank], high[rank]],
            effect_size=result.effect_size[flat], p_value=result.p_value[flat], q_value=result.q_value[flat],
            mean_positive=responses[labels, flat].mean(), mean_negative=responses[~labels, flat].mean(),
            exemplars=found))
    significant = result.significant().reshape(model.n_layers, n_neurons)
    upward = (result.auroc >= 0.5).reshape(model.n_layers, n_neurons)
    histogram, edges = np.histogram(result.auroc, bins=20, range=(0.0, 1.0))
    summary = ConceptSummary(
        n_neurons_tested=int(result.auroc.size),
        n_significant=int(significant.sum()),
        n_significant_positive=int((significant & upward).sum()),
        n_significant_negative=int((significant & ~upward).sum()),
        per_layer_significant_positive=(significant & upward).sum(axis=1),
        per_layer_significant_negative=(significant & ~upward).sum(axis=1),
        max_auroc=float(result.auroc.max()), min_auroc=float(result.auroc.min()),
        strong_selective={str(t): int((result.significant() & (result.strength >= t - 0.5)).sum())
                          for t in (0.7, 0.8, 0.9)},
        auroc_histogram=AurocHistogram(edges=edges, counts=histogram))
    return ConceptSection(
        **section_identity(probeset, [acts], config.pooling),
        test="Mann-Whitney U (two-sided), Benjamini-Hochberg across all neurons", alpha=ALPHA,
        neurons=neurons, summary=summary,
        control=Control(kind="shuffled labels", seed=seed, n_significant=int(control.significant().sum()),
                        max_abs_auroc_deviation=float(control.strength.max())))
