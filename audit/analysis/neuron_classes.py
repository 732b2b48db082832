"""Neuron classes of causal LMs from what each neuron writes to the vocabulary (Gurnee et al. 2024,
"Universal neurons in GPT2 language models").

Inputs are per-neuron statistics of W_out[n]·W_U over the vocabulary (final norm's scale folded into W_U):
kurtosis, skew, variance, and the norm of W_out[n]. Each neuron gets at most one class, checked in order:

- **prediction**: kurtosis > 10 and skew > 0 — boosts a small set of tokens;
- **suppression**: kurtosis > 10 and skew < 0 — pushes a small set of tokens down;
- **partition**: vocabulary variance far above the model's typical neuron (robust z of log variance > 3) —
  splits the vocabulary into large promoted and suppressed parts;
- **entropy** (candidate): weight norm far above typical (robust z of log norm > 3) while the unembedding
  reads little of its direction (robust z of log(variance / norm²) < −2) — writes mostly to the unembedding's
  null space, where it can scale the final norm and so the output entropy.

Partition and entropy use robust z-scores (median and MAD over all neurons of the model) because their
scale depends on the model; prediction and suppression use the paper's absolute kurtosis threshold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CLASSES = ("prediction", "suppression", "partition", "entropy")
NONE = ""


@dataclass(frozen=True)
class ClassRules:
    """Thresholds of the class definitions (see the module docstring)."""

    kurtosis: float = 10.0
    partition_z: float = 3.0
    entropy_norm_z: float = 3.0
    entropy_vocab_z: float = -2.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def robust_z(values: np.ndarray) -> np.ndarray:
    """(x − median) / (1.4826·MAD) over all entries: a z-score that a few extreme neurons cannot inflate."""
    values = np.asarray(values, dtype=float)
    median = np.median(values)
    mad = 1.4826 * np.median(np.abs(values - median))
    if mad <= 0:
        return np.zeros_like(values)
    return (values - median) / mad


def classify(kurtosis: np.ndarray, skew: np.ndarray, variance: np.ndarray, norm: np.ndarray, *,
             rules: ClassRules = ClassRules()) -> np.ndarray:
    """One class name per neuron ("" for none), same shape as the inputs (e.g. layers × neurons)."""
    kurtosis, skew, variance, norm = (np.asarray(a, dtype=float) for a in (kurtosis, skew, variance, norm))
    tiny = np.finfo(float).tiny
    log_var = np.log(np.maximum(variance, tiny))
    log_norm = np.log(np.maximum(norm, tiny))
    read = log_var - 2 * log_norm  # log of the variance a unit vector in the neuron's direction gets
    labels = np.full(kurtosis.shape, NONE, dtype=object)
    entropy = (robust_z(log_norm) > rules.entropy_norm_z) & (robust_z(read) < rules.entropy_vocab_z)
    labels[entropy] = "entropy"
    labels[robust_z(log_var) > rules.partition_z] = "partition"
    heavy = kurtosis > rules.kurtosis
    labels[heavy & (skew < 0)] = "suppression"
    labels[heavy & (skew > 0)] = "prediction"
    return labels


def counts_per_layer(labels: np.ndarray) -> dict[str, list[int]]:
    """Per class, the number of neurons in each layer; ``labels`` is (layers × neurons)."""
    return {name: [int(n) for n in (labels == name).sum(axis=1)] for name in CLASSES}
