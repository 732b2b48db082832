"""The comparison.json contract: what ``neuron-audit compare`` writes and ``render`` reads back.

A separate record set from results.json (its own schema, ``compare.schema.json``, printed by
``neuron-audit schema --compare``) that embeds the two audits' results unchanged, so the per-model
evidence (cards, exemplars, ablations) is the same record type as a single audit's. Extension only.
"""

from __future__ import annotations

from typing import Any, Literal, Union

from .contract import AuditResult, ModelInfo, PolicyResult, RunInfo, record
from .record import Record, extra_field, optional

COMPARE_SCHEMA_VERSION = "1"


@record
class CorrelationSettings(Record):
    """How the neuron correlation was measured: corpus, alignment, sample counts, layer pairs, baseline."""

    corpus: str
    corpus_sha256: str
    n_texts: int
    alignment: Literal["tokens", "texts"]
    alignment_reason: str
    n_samples: int
    n_baseline_samples: int
    baseline_stride: int
    precision: Literal["bfloat16", "float32"]  # what the samples were rounded to before their products
    baseline: str
    layer_mode: Literal["same", "depth", "all"]
    layer_pairs: list[list[int]]
    blocks: int
    threshold: float
    seed: int
    max_length: int
    max_length_used: list[int] = optional()  # [A, B]: max_length within each model's own position limit
    truncated_texts: list[int] = optional()  # [A, B]: corpus texts each model cut at its used length
    extra: dict[str, Any] = extra_field()


@record
class LayerPersistence(Record):
    """One layer of one model: how many of its neurons have a partner in the other model beyond the baseline."""

    layer: int
    n_neurons: int
    persistent: int
    share_persistent: float
    unmatched: int  # model A: gone in B; model B: new in B
    share_unmatched: float
    mean_r: float
    mean_baseline: float
    mean_excess: float
    mean_diagonal_r: float = optional()  # same-shape models: neuron i against neuron i
    same_index_share: float = optional()  # same-shape models: best partner is the same index
    extra: dict[str, Any] = extra_field()


@record
class NeuronChange(Record):
    """A neuron of A with its best partner in B: r, rotation baseline, excess, and (same shape) r with itself."""

    layer: int
    neuron: int
    name: str
    partner_layer: int
    partner_neuron: int
    partner_name: str
    r: float
    baseline: float
    excess: float
    persistent: bool
    diagonal_r: float = optional()
    extra: dict[str, Any] = extra_field()


@record
class MatchTable(Record):
    """Every neuron of one model, per layer: partner layer and index in the other model, r and baseline."""

    layers: list[int]
    partner_layer: list[list[int]]
    partner_neuron: list[list[int]]
    r: list[list[float]]
    baseline: list[list[float]]
    extra: dict[str, Any] = extra_field()


@record
class CorrelationHistogram(Record):
    """Counts of model A's neurons by best-match r and by rotation-baseline r (and diagonal r) on shared bins."""

    edges: list[float]
    best: list[int]
    baseline: list[int]
    diagonal: list[int] = optional()
    extra: dict[str, Any] = extra_field()


@record
class FlaggedPair(Record):
    """A neuron flagged in one model and its matched partner in the other, with the statistic in both."""

    side: Literal["a", "b"]  # the model that flagged it
    name: str
    layer: int
    neuron: int
    value: float  # AUROC (concept sets) or strongest |d_z| (paired sets) in the flagging model
    partner_name: str
    partner_layer: int
    partner_neuron: int
    partner_value: float
    delta: float  # value in B minus value in A, through the matching
    r: float
    excess: float
    persistent: bool
    partner_flagged: bool
    extra: dict[str, Any] = extra_field()


@record
class OutputChange(Record):
    """Output-level bias score in A and B on the same items, and B − A with a paired bootstrap 95% CI."""

    metric: str
    a: float
    b: float
    delta: float
    ci95: list[float]
    excludes_zero: bool
    extra: dict[str, Any] = extra_field()


@record
class ProbesetDiff(Record):
    """One probe set audited in both models and compared through the neuron matching."""

    name: str
    kind: Literal["concept", "paired"]
    statistic: str
    flagged_definition: str
    n_flagged_a: int
    n_flagged_b: int
    overlap: int  # flagged in A with a persistent partner flagged in B
    share_overlap: float | None
    became_flagged: int  # flagged in B, but its matched partner in A was not
    stopped_flagged: int  # flagged in A, but its matched partner in B is not
    mean_abs_delta: float  # over A's reported neurons
    validated_a: bool | None
    validated_b: bool | None
    pairs_a: list[FlaggedPair]
    pairs_b: list[FlaggedPair]
    new_in_b: list[FlaggedPair]
    output: OutputChange = optional()
    output_not_comparable: str = optional()  # why ``output`` is absent (models of different kinds)
    extra: dict[str, Any] = extra_field()


@record
class Audits(Record):
    """The two audits as their own results.json would hold them."""

    a: AuditResult
    b: AuditResult
    extra: dict[str, Any] = extra_field()


@record
class ComparisonResult(Record):
    """A checkpoint comparison: both models, the neuron matching, per-layer persistence, and the audit diff."""

    schema_version: Literal["1"] = COMPARE_SCHEMA_VERSION
    kind: Literal["comparison"] = "comparison"
    model_a: ModelInfo
    model_b: ModelInfo
    run: RunInfo
    correlation: CorrelationSettings
    layers_a: list[LayerPersistence]
    layers_b: list[LayerPersistence]
    changed: list[NeuronChange]
    histogram: CorrelationHistogram
    matches_a: MatchTable
    matches_b: MatchTable
    probesets: list[ProbesetDiff]
    audits: Union[Audits, None]
    caveats: list[str]
    policy: PolicyResult = optional()
    extra: dict[str, Any] = extra_field()


__all__ = ["Audits", "COMPARE_SCHEMA_VERSION", "ComparisonResult", "CorrelationHistogram", "CorrelationSettings",
           "FlaggedPair", "LayerPersistence", "MatchTable", "NeuronChange", "OutputChange", "ProbesetDiff"]
