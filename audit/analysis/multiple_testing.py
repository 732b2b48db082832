"""Resolved and corrected Monte Carlo tests: how many random sets an audit needs, Besag–Clifford sequential
p-values, Holm's step-down correction, and the graphical sequentially rejective procedure of Bretz et al.
(2009) that the audit's dose–response uses.

A Monte Carlo p-value from ``N`` random sets is at least 1/(N + 1); tested at level w·α it can only clear it
when 1/(N + 1) < w·α, so ``N`` grows as the smallest weight a test can be tested at shrinks
(:func:`sets_needed`). Sampling stops early once ``h`` random sets have matched or beaten the target (Besag &
Clifford 1991, "Sequential Monte Carlo p-values", Biometrika 78:301–304): a null-like target then costs ~h/p
sets, not N.

The audit's family is one fixed-sequence chain per probe set (largest dose first, down to k = 1: the
classic step-down search for a minimum effective dose), the chains joined as in Holm's procedure (each
starts with α/S; a chain whose every dose is rejected passes its α to the others). Any such graph controls
the family-wise error rate at α under any dependence (Bretz, Maurer, Brannath & Posch 2009, "A graphical
approach to sequentially rejective multiple test procedures", Statistics in Medicine 28:586–604). Every
test is run at level α/S or more, so ⌈S/α⌉ random sets resolve it, where Holm over every dose would need
⌈(S × doses)/α⌉; tests a chain never reaches cost nothing beyond their descriptive draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

ALPHA = 0.05
EXCEEDANCES = 10  # Besag–Clifford h: stop after this many random sets at least as strong as the target


def sets_needed(n_tests: int, *, alpha: float = ALPHA) -> int:
    """Random sets per test so that the smallest attainable p, 1/(N + 1), stays below α/m (``n_tests`` = m,
    or 1/w for a test run at weight w): N = ⌈m/α⌉ (one more than the bound m/α − 1, because the verdict asks
    for a strict p < α)."""
    if n_tests < 1:
        raise ValueError(f"The 'n_tests' parameter must be an int >= 1. Got {n_tests!r} instead.")
    return int(np.ceil(n_tests / alpha - 1e-9))


@dataclass
class Graph:
    """A graphical multiple test procedure: initial weights (summing to at most 1) and transition weights
    (rows summing to at most 1, zero diagonal): when hypothesis j is rejected, G[j, l] of its weight goes to l."""

    weights: np.ndarray
    transitions: np.ndarray


def chain_graph(lengths: Sequence[int]) -> Graph:
    """Fixed-sequence chains, one per member of the family (``lengths[c]`` hypotheses each, numbered chain
    after chain), joined like Holm's procedure: every chain's first hypothesis starts with weight 1/S, a
    rejection passes its whole weight to the next in its chain, and the last of a chain passes it equally to
    the first of every other chain (the update of :func:`graphical_test` forwards it past rejected ones)."""
    lengths = [int(n) for n in lengths]
    if any(n < 0 for n in lengths):
        raise ValueError(f"The 'lengths' parameter must hold ints >= 0. Got {lengths!r} instead.")
    m = sum(lengths)
    starts = np.cumsum([0, *lengths])[:-1]
    chains = [list(range(start, start + n)) for start, n in zip(starts, lengths) if n]
    weights, transitions = np.zeros(m), np.zeros((m, m))
    heads = [chain[0] for chain in chains]
    for chain in chains:
        weights[chain[0]] = 1.0 / len(chains)
        for a, b in zip(chain, chain[1:]):
            transitions[a, b] = 1.0
        others = [head for head in heads if head != chain[0]]
        if others:
            transitions[chain[-1], others] = 1.0 / len(others)
    return Graph(weights, transitions)


@dataclass
class GraphResult:
    """Adjusted p-values (None where the procedure never needed the test's p) and which tests were run."""

    adjusted: list[float | None]
    tested: list[bool]

    def rejected(self, alpha: float = ALPHA) -> list[bool]:
        return [p is not None and p < alpha for p in self.adjusted]


def _remove(weights: np.ndarray, transitions: np.ndarray, j: int, active: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Bretz et al. (2009) Algorithm 1, step 2: drop rejected ``j``, pass on its weight and rewire the graph."""
    w, g = weights.copy(), transitions.copy()
    rest = [i for i in active if i != j]
    for l in rest:
        w[l] = weights[l] + weights[j] * transitions[j, l]
        for k in rest:
            if k == l:
                g[l, k] = 0.0
                continue
            loop = transitions[l, j] * transitions[j, l]
            g[l, k] = (transitions[l, k] + transitions[l, j] * transitions[j, k]) / (1.0 - loop) if loop < 1 else 0.0
    w[j] = 0.0
    g[j, :] = g[:, j] = 0.0
    return w, g


def graphical_test(graph: Graph, p_of: Callable[[int], float], *, alpha: float = ALPHA) -> GraphResult:
    """Adjusted p-values of a graphical procedure (Bretz et al. 2009, the adjusted-p form of Algorithm 1):
    repeatedly take the hypothesis with the smallest p/w, its adjusted p = max(p/w, the previous one), then
    remove it and pass on its weight. ``p_of(i)`` is called only when hypothesis i first holds weight while
    every earlier adjusted p was below ``alpha`` (so a chain's later tests are never run once an earlier one
    fails). Hypotheses never run get None; those run but left when weight ran out get 1."""
    w, g = np.asarray(graph.weights, float).copy(), np.asarray(graph.transitions, float).copy()
    m = len(w)
    known: dict[int, float] = {}
    adjusted: list[float | None] = [None] * m
    active = list(range(m))
    previous = 0.0
    while active:
        holding = [i for i in active if w[i] > 1e-12]
        if previous < alpha:
            for i in holding:
                if i not in known:
                    known[i] = float(p_of(i))
        holding = [i for i in holding if i in known]
        if not holding:
            break
        j = min(holding, key=lambda i: (known[i] / w[i], i))
        previous = max(previous, min(1.0, known[j] / w[j]))
        adjusted[j] = previous
        w, g = _remove(w, g, j, active)
        active.remove(j)
    for i in known:
        if adjusted[i] is None:
            adjusted[i] = 1.0
    return GraphResult(adjusted=adjusted, tested=[i in known for i in range(m)])


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
