"""Settings of one audit run (:class:`RunConfig`), validated at construction.

The base of the package: it imports only ``errors``, so every stage, the CLI and the tests can share it
without import cycles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import expected

INT_RANGES = {  # inclusive bounds of every integer setting; the CLI checks its options against the same table
    "top_k": (1, 1000), "seed": (0, 2**32 - 1), "batch_size": (1, 65536), "max_length": (2, 1 << 20),
    "bootstrap_resamples": (100, 100_000), "n_exemplars": (1, 100), "ablate_k": (1, 10_000),
    "ablate_per_layer": (1, 10_000), "null_sets": (2, 10_000), "ablation_texts": (4, 1_000_000),
    "reference_texts": (10, 1_000_000), "dose_max": (1, 1_000_000), "memory_budget_mb": (64, 1 << 30), "explain_k": (2, 1000),
}
EXECUTION_RANGES = {"workers": (1, 100_000), "shard_size": (1, 10_000_000)}  # scale-out options (not settings)
COMPARE_RANGES = {"baseline_stride": (1, 1000), "compare_memory_budget_mb": (16, 1 << 22), "top_changed": (1, 10_000),
                  "cards": (1, 100)}  # options of `compare`, checked by CompareConfig and the CLI alike
POOLINGS = ("max", "mean")  # how per-token activations become one response per text
ABLATION_MODES = ("zero", "mean", "dampen")  # how flagged neurons are intervened on


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
    dose_max: int = 100  # the dose–response ladder (1, 3, 10, 30, …) stops at this many neurons
    reference: str | None = None
    reference_texts: int = 100
    evidence: bool = True
    explain: bool = True  # explanations (method A + N2G graph) and the verdict built on them
    explain_k: int = 20  # top contexts per neuron the explanation learns from
    corpus: str | None = None  # extra general text (plain lines or JSONL) for top contexts
    word_vectors: str | None = None  # fastText .bin/.vec for word similarity; default: the model's embeddings
    neuron_classes: bool = True  # causal LMs: classify every neuron from W_out·W_U
    generation_check: bool = True  # safety-tagged concept sets: toxic vs neutral continuation log-probs
    cache_dir: str | None = None
    memory_budget_mb: int = 2048  # per-text aggregates beyond this are memory-mapped from a temporary file
    progress: bool = True

    def __post_init__(self) -> None:
        for name in INT_RANGES:
            if name != "ablate_per_layer" or self.ablate_per_layer is not None:
                _check_int(name, getattr(self, name), *INT_RANGES[name])
        if self.ablation_mode not in ABLATION_MODES:
            raise expected("The 'ablation_mode' parameter", f"one of {ABLATION_MODES}", self.ablation_mode)
        if self.pooling not in POOLINGS:
            raise expected("The 'pooling' parameter", f"one of {POOLINGS}", self.pooling)

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self)
        settings.pop("progress")
        settings.pop("cache_dir")  # where harvests are cached does not change results
        settings.pop("memory_budget_mb")  # nor whether aggregates live in RAM or a memory-mapped file
        return settings


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise expected(f"The '{name}' parameter", f"an int in [{low}, {high}]", value)


LAYER_MODES = ("auto", "same", "depth", "all")  # which layer pairs a comparison correlates
ALIGNMENTS = ("auto", "tokens", "texts")  # what a comparison's samples are
PRECISIONS = ("bfloat16", "float32")  # what the correlation's samples are rounded to before their products


@dataclass(frozen=True)
class CompareConfig:
    """Settings of one checkpoint comparison (the audits of both models use a :class:`RunConfig`)."""

    layers: str = "auto"  # auto: same when the depths match, else depth
    align: str = "auto"  # auto: tokens when the vocabularies match, else texts
    baseline_stride: int = 8  # the rotation baseline uses every n-th real token of each text
    precision: str = "bfloat16"  # samples rounded to bfloat16 before their products (float32 accumulation)
    memory_budget_mb: int = 2048  # largest correlation state held at once; more layer pairs take more passes
    threshold: float = 0.5  # excess correlation above which a neuron persists (Gurnee et al. 2024)
    top_changed: int = 20
    audit: bool = True  # also audit both models on the probe sets and diff the findings

    def __post_init__(self) -> None:
        if self.layers not in LAYER_MODES:
            raise expected("The 'layers' parameter", f"one of {LAYER_MODES}", self.layers)
        if self.align not in ALIGNMENTS:
            raise expected("The 'align' parameter", f"one of {ALIGNMENTS}", self.align)
        if self.precision not in PRECISIONS:
            raise expected("The 'precision' parameter", f"one of {PRECISIONS}", self.precision)
        _check_int("memory_budget_mb", self.memory_budget_mb, *COMPARE_RANGES["compare_memory_budget_mb"])
        for name in ("baseline_stride", "top_changed"):
            _check_int(name, getattr(self, name), *COMPARE_RANGES[name])
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or not 0 < self.threshold < 2:
            raise expected("The 'threshold' parameter", "a number in (0, 2)", self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
