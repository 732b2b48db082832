"""Settings of one audit run (:class:`RunConfig`), validated at construction.

The base of the package: it imports only ``errors``, so every stage, the CLI and the tests can share it
without import cycles.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import expected

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
    reference: str | None = None
    reference_texts: int = 100
    evidence: bool = True
    neuron_classes: bool = True  # causal LMs: classify every neuron from W_out·W_U
    generation_check: bool = True  # safety-tagged concept sets: toxic vs neutral continuation log-probs
    cache_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        _check_int("top_k", self.top_k, 1, 1000)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        _check_int("batch_size", self.batch_size, 1, 65536)
        _check_int("max_length", self.max_length, 2, 1 << 20)
        _check_int("bootstrap_resamples", self.bootstrap_resamples, 100, 100_000)
        _check_int("n_exemplars", self.n_exemplars, 1, 100)
        _check_int("ablate_k", self.ablate_k, 1, 10_000)
        if self.ablate_per_layer is not None:
            _check_int("ablate_per_layer", self.ablate_per_layer, 1, 10_000)
        _check_int("null_sets", self.null_sets, 2, 10_000)
        _check_int("ablation_texts", self.ablation_texts, 4, 1_000_000)
        _check_int("reference_texts", self.reference_texts, 10, 1_000_000)
        if self.ablation_mode not in ABLATION_MODES:
            raise expected("The 'ablation_mode' parameter", f"one of {ABLATION_MODES}", self.ablation_mode)
        if self.pooling not in POOLINGS:
            raise expected("The 'pooling' parameter", f"one of {POOLINGS}", self.pooling)

    def to_dict(self) -> dict[str, Any]:
        settings = asdict(self)
        settings.pop("progress")
        settings.pop("cache_dir")  # where harvests are cached does not change results
        return settings


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise expected(f"The '{name}' parameter", f"an int in [{low}, {high}]", value)
