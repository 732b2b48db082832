"""Resolved and corrected Monte Carlo tests: how many random sets an audit needs, Besag–Clifford sequential
p-values, and Holm's step-down correction across all of an audit's validation tests.

A Monte Carlo p-value from ``N`` random sets is at least 1/(N + 1); corrected for ``m`` tests at level α it
can only clear α when 1/(N + 1) < α/m, so ``N`` grows with the audit's number of tests (:func:`sets_needed`).
Sampling stops early once ``h`` random sets have matched or beaten the target (Besag & Clifford 1991,
"Sequential Monte Carlo p-values", Biometrika 78:301–304): a null-like target then costs ~h/p sets, not N.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

ALPHA = 0.05
EXCEEDANCES = 10  # Besag–Clifford h: stop after this many random sets at least as strong as the target


def sets_needed(n_tests: int, *, alpha: float = ALPHA) -> int:
    """Random sets per test so that the smallest attainable p, 1/(N + 1), times ``n_tests`` stays below
    ``alpha``: N = ⌈m/α⌉ (one more than the bound m/α − 1, because the verdict asks for a strict p < α)."""
    if n_tests < 1:
        raise ValueError(f"The 'n_tests' parameter must be an int >= 1. Got {n_tests!r} instead.")
    return int(np.ceil(n_tests / alpha - 1e-9))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): sorted ascending, the j-th (1-based) becomes
    max over i ≤ j of (m − i + 1)·p(i), capped at 1; rejecting where the adjusted p < α controls the
    family-wise error rate at α under any dependence between the tests."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise ValueError("The 'p_values' parameter must be a 1-D sequence of probabilities in [0, 1].")
    m = len(p)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


@dataclass
class SequentialTest:
    """A Besag–Clifford sequential Monte Carlo test of one target effect against random sets.

    Feed null values in the order they were drawn (:meth:`add`); stop drawing once :attr:`done`. Ties count
    against the target. ``larger_is_stronger`` False: smaller (more negative) values are the stronger effect.
    """

    effect: float
    n_max: int
    h: int = EXCEEDANCES
    larger_is_stronger: bool = True
    values: list[float] = field(default_factory=list)

    @property
    def exceedances(self) -> int:
        return int(self._at_least_as_strong(np.asarray(self.values)).sum())

    @property
    def done(self) -> bool:
        return self.exceedances >= self.h or len(self.values) >= self.n_max

    @property
    def stopped_early(self) -> bool:
        """True when ``h`` random sets matched the target before all ``n_max`` were drawn."""
        return self.exceedances >= self.h

    def add(self, values: Sequence[float]) -> None:
        """Append null values, keeping only those drawn up to the stopping point (the h-th exceedance)."""
        for value in np.asarray(values, dtype=np.float64).ravel():
            if self.done:
                return
            self.values.append(float(value))

    def p_value(self) -> float:
        """h/l when the h-th exceedance came at draw l; else (g + 1)/(n + 1) after all n draws with g < h."""
        n, g = len(self.values), self.exceedances
        if g >= self.h:
            return self.h / n
        return (g + 1) / (n + 1)

    def _at_least_as_strong(self, values: np.ndarray) -> np.ndarray:
        return values >= self.effect if self.larger_is_stronger else values <= self.effect
