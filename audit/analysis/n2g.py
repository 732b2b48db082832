"""Neuron to Graph (Foote et al. 2023): a trie of the token patterns that make a neuron fire, its
predictions on new text, and fidelity against two baselines. Pure functions over token strings.

A pattern starts at the activating token and walks back through its context: important tokens verbatim,
unimportant positions as the wildcard ``*``. The trie is stored as its patterns (what results.json keeps)
and rebuilt on load. Prediction walks backwards from a token through exact and wildcard branches and takes
the normalised activation of the deepest (most specific) pattern it completes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

WILDCARD = "*"
FIRE = 0.5  # a token fires at this share of the neuron's maximum (as published)
IMPORTANT = 0.75  # a context token is important when blanking it drops the activation by this share
KEEP = 0.5  # pruning keeps the shortest suffix with this share of the activation


@dataclass
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    value: float | None = None  # normalised activation where a pattern ends


def pattern(tokens: Sequence[str], at: int, important: Sequence[bool]) -> list[str]:
    """The pattern of one example: the token at ``at``, then back to the earliest important token."""
    marked = [i for i in range(at) if important[i]]
    start = min(marked) if marked else at
    return [tokens[at]] + [tokens[i] if important[i] else WILDCARD for i in range(at - 1, start - 1, -1)]


def prune_start(activations: Sequence[float], full: float, *, keep: float = KEEP) -> int:
    """Index into candidate suffixes (ordered shortest first) of the first keeping ``keep`` of ``full``."""
    for i, value in enumerate(activations):
        if value >= keep * full:
            return i
    return len(activations) - 1


def importance(original: float, blanked: Sequence[float], *, threshold: float = IMPORTANT) -> list[bool]:
    """Saliency: a position matters when blanking it drops the activation by ``threshold`` of the original."""
    if original <= 0:
        return [False] * len(blanked)
    return [(original - value) / original >= threshold for value in blanked]


def firing_tokens(observed: Mapping[str, Sequence[float]], *, fire: float = FIRE) -> dict[str, float]:
    """The graph's one-token patterns from every training occurrence of each token (normalised activations):
    the tokens whose firing rate is at least the rate that maximises F1 of "this token fires" over those same
    occurrences, each with its mean activation when it fires.

    Predicting firing for a token pays, in F1, when its firing rate exceeds about half the best F1 reachable
    (Lipton, Elkan & Naryanaswamy 2014), so a token that fires on a third of its uses belongs in the graph
    when the neuron is hard to predict, and not when it is easy; a fixed cut (mean ≥ ``fire``) drops the
    first kind and a plain lookup (fired once) keeps every token that ever fired. Ties keep fewer tokens.
    """
    stats = []
    for token, values in observed.items():
        values = np.asarray(values, dtype=float)
        firing = values[values >= fire]
        if len(firing):
            stats.append((len(firing) / len(values), len(firing), len(values), token, float(firing.mean())))
    if not stats:
        return {}
    stats.sort(key=lambda row: (-row[0], row[3]))
    total = sum(row[1] for row in stats)
    hits = np.cumsum([row[1] for row in stats])
    predicted = np.cumsum([row[2] for row in stats])
    rates = np.array([row[0] for row in stats])
    ends = np.flatnonzero(np.append(rates[1:] != rates[:-1], True))  # a threshold keeps whole groups of equal rate
    f1 = 2 * hits[ends] / (predicted[ends] + total)
    best_rate = rates[ends[int(np.argmax(f1 >= f1.max() - 1e-12))]]
    return {token: value for rate, _, _, token, value in stats if rate >= best_rate}


class Graph:
    """The trie of a neuron's patterns, each ending in a normalised activation."""

    def __init__(self, patterns: Iterable[tuple[Sequence[str], float]] = ()) -> None:
        self.root = _Node()
        self.patterns: dict[tuple[str, ...], float] = {}
        for tokens, value in patterns:
            self.add(tokens, value)

    def add(self, tokens: Sequence[str], value: float) -> None:
        """Insert a pattern; where two examples share one, the end node keeps the larger activation."""
        key = tuple(tokens)
        self.patterns[key] = max(value, self.patterns.get(key, -np.inf))
        node = self.root
        for token in key:
            node = node.children.setdefault(token, _Node())
        node.value = self.patterns[key]

    def predict(self, tokens: Sequence[str], at: int) -> float:
        """Predicted normalised activation of ``tokens[at]``: the deepest pattern completed walking back."""
        best = (-1, 0.0)  # (depth, value)
        stack = [(self.root.children.get(tokens[at]), at - 1, 1)]
        while stack:
            node, i, depth = stack.pop()
            if node is None:
                continue
            if node.value is not None and (depth, node.value) > best:
                best = (depth, node.value)
            if i < 0:
                continue
            stack.append((node.children.get(WILDCARD), i - 1, depth + 1))
            stack.append((node.children.get(tokens[i]), i - 1, depth + 1))
        return best[1]

    def predict_all(self, tokens: Sequence[str]) -> np.ndarray:
        return np.array([self.predict(tokens, i) for i in range(len(tokens))])

    def activating_tokens(self) -> set[str]:
        """Tokens at which some pattern fires."""
        return {key[0] for key, value in self.patterns.items() if value >= FIRE}

    def context_tokens(self) -> set[str]:
        """Important context tokens of firing patterns (what the neuron depends on)."""
        return {t for key, value in self.patterns.items() if value >= FIRE for t in key[1:] if t != WILDCARD}

    def to_list(self) -> list[dict[str, Any]]:
        return [{"tokens": list(key), "activation": round(float(value), 4)}
                for key, value in sorted(self.patterns.items(), key=lambda item: (-item[1], item[0]))]

    @classmethod
    def from_list(cls, rows: Sequence[dict[str, Any]]) -> Graph:
        return cls((row["tokens"], row["activation"]) for row in rows)


def similarity(a: Graph, b: Graph) -> float:
    """Jaccard overlap of two graphs' firing patterns (1.0: the same patterns)."""
    left = {k for k, v in a.patterns.items() if v >= FIRE}
    right = {k for k, v in b.patterns.items() if v >= FIRE}
    return len(left & right) / len(left | right) if left | right else 0.0


def scores(predicted: np.ndarray, actual: np.ndarray, *, fire: float = FIRE) -> dict[str, float | int | None]:
    """Token-level precision, recall and F1 of firing (normalised activation ≥ ``fire``). Undefined values are
    None, never 0: precision when nothing is predicted to fire, recall and F1 when nothing fires."""
    p, a = np.asarray(predicted) >= fire, np.asarray(actual) >= fire
    tp, n_pred, n_true = int((p & a).sum()), int(p.sum()), int(a.sum())
    precision = tp / n_pred if n_pred else None
    recall = tp / n_true if n_true else None
    f1 = 2 * tp / (n_pred + n_true) if n_true else None
    return {"precision": precision, "recall": recall, "f1": f1, "n_firing": n_true, "n_tokens": int(a.size)}


@dataclass
class Baselines:
    """What simple lookups learn from the same training texts: tokens and bigrams seen firing there."""

    tokens: set[str] = field(default_factory=set)
    bigrams: set[tuple[str, str]] = field(default_factory=set)

    def learn(self, tokens: Sequence[str], normalised: Sequence[float]) -> None:
        for i, (token, value) in enumerate(zip(tokens, normalised)):
            if value >= FIRE:
                self.tokens.add(token)
                self.bigrams.add((tokens[i - 1] if i else "", token))

    def token_lookup(self, tokens: Sequence[str]) -> np.ndarray:
        return np.array([1.0 if t in self.tokens else 0.0 for t in tokens])

    def ngram(self, tokens: Sequence[str]) -> np.ndarray:
        return np.array([1.0 if (tokens[i - 1] if i else "", t) in self.bigrams else 0.0
                         for i, t in enumerate(tokens)])


def fidelity(graph: Graph, baselines: Baselines, texts: Sequence[tuple[Sequence[str], np.ndarray]]) -> dict:
    """Graph vs token lookup vs bigram baseline on the same held-out tokens (normalised activations)."""
    if not texts:
        return {}
    actual = np.concatenate([values for _, values in texts])
    graph_pred = np.concatenate([graph.predict_all(tokens) for tokens, _ in texts])
    lookup = np.concatenate([baselines.token_lookup(tokens) for tokens, _ in texts])
    bigram = np.concatenate([baselines.ngram(tokens) for tokens, _ in texts])
    return {"graph": scores(graph_pred, actual), "token_lookup": scores(lookup, actual),
            "ngram": scores(bigram, actual)}
