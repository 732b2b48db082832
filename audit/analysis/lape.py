"""Language-specific neurons by language activation probability entropy (LAPE, Tang et al. 2024), and the
deactivation matrix that tests them: per-language perplexity after zeroing each language's neurons.

Conventions follow the authors' code (RUCAIBox/Language-Specific-Neurons, ``identify.py`` and ``ppl.py``):

* activation probability of a neuron in a language = share of that language's tokens where its activation
  (the MLP nonlinearity's output; for gated MLPs ``act(gate)``) is > 0;
* entropy of the probabilities normalised across languages (a neuron active in no language: 0·log 0 = 0);
* a neuron is dismissed unless some language's probability is strictly above the ``filter_rate`` k-th value
  of all (neuron, language) probabilities, k = round(N · filter_rate) (torch ``kthvalue``, 1-based);
* the ``top_rate`` · neurons lowest-entropy neurons are kept, and each is assigned to every language whose
  probability is strictly above the ``activation_bar_ratio`` k-th value.

Pure functions over arrays: no model, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

TOP_RATE = 0.01  # the paper's 1 % of all neurons
FILTER_RATE = 0.95
ACTIVATION_BAR_RATIO = 0.95


@dataclass(frozen=True)
class Lape:
    """Language-activation-probability-entropy result (Tang et al. 2024)."""

    probability: np.ndarray  # (groups, neurons): share of tokens with activation > 0
    entropy: np.ndarray  # (neurons,): entropy of the probabilities normalised across groups (inf: filtered out)
    probability_threshold: float  # the filter_rate k-th value: some language must be above it
    entropy_threshold: float  # the largest entropy among the kept neurons
    activation_bar: float  # the activation_bar_ratio k-th value: a kept neuron belongs to languages above it
    selected: np.ndarray  # (neurons,) bool: the top_rate lowest-entropy neurons
    assigned: np.ndarray  # (groups, neurons) bool: neuron is specific to that group
    top_rate: float
    filter_rate: float


def kth_value(values: np.ndarray, rate: float) -> float:
    """torch ``kthvalue(round(N·rate))``: the k-th smallest value, 1-based (Python's round: half to even)."""
    flat = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))
    k = min(max(int(round(flat.size * rate)), 1), flat.size)
    return float(flat[k - 1])


def language_entropy(probability: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each neuron's activation probabilities normalised to sum 1 across languages."""
    probability = np.asarray(probability, dtype=np.float64)
    total = probability.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, probability / total, 0.0)
        logs = np.where(share > 0, np.log(np.where(share > 0, share, 1.0)), 0.0)
    return -(share * logs).sum(axis=0)


def lape(probability: np.ndarray, *, top_rate: float = TOP_RATE, filter_rate: float = FILTER_RATE,
         activation_bar_ratio: float = ACTIVATION_BAR_RATIO) -> Lape:
    """Language-specific neurons from per-language activation probabilities shaped (groups, neurons)."""
    probability = np.asarray(probability, dtype=np.float64)
    if probability.ndim != 2 or probability.shape[0] < 2:
        raise ValueError(f"The 'probability' parameter must be (groups >= 2, neurons). Got {probability.shape}.")
    entropy = language_entropy(probability)
    p_threshold = kth_value(probability, filter_rate)
    entropy[(probability > p_threshold).sum(axis=0) == 0] = np.inf
    n_keep = int(round(entropy.size * top_rate))
    order = np.argsort(entropy, kind="stable")[:n_keep]
    selected = np.zeros(entropy.size, dtype=bool)
    selected[order] = True
    bar = kth_value(probability, activation_bar_ratio)
    assigned = (probability > bar) & selected
    kept = entropy[order][np.isfinite(entropy[order])]
    return Lape(probability=probability, entropy=entropy, probability_threshold=p_threshold,
                entropy_threshold=float(kept.max()) if kept.size else float(np.log(probability.shape[0])), activation_bar=bar,
                selected=selected, assigned=assigned, top_rate=top_rate, filter_rate=filter_rate)


def normalised_entropy(result: Lape) -> float | None:
    """Mean entropy of the assigned neurons over log(groups): near 1 means even the most language-specific
    neurons fire about equally in every language (LAPE found nothing language-specific)."""
    chosen = result.assigned.any(axis=0)
    if not chosen.any():
        return None
    return float(result.entropy[chosen].mean() / np.log(result.probability.shape[0]))


def matched_random(per_layer: Sequence[int], n_neurons: int, exclude: np.ndarray, *, seed: int) -> np.ndarray:
    """Flat indices of a random neuron set with ``per_layer[l]`` neurons in layer l, none in ``exclude``
    (flat indices): the control of the same size and layers as a language's set."""
    rng = np.random.default_rng(seed)
    banned = set(int(i) for i in np.asarray(exclude).reshape(-1))
    chosen = []
    for layer, count in enumerate(per_layer):
        pool = [layer * n_neurons + i for i in range(n_neurons) if layer * n_neurons + i not in banned]
        if count:
            chosen += rng.choice(pool, size=min(int(count), len(pool)), replace=False).tolist()
    return np.array(sorted(chosen), dtype=np.int64)


def _perplexity(loglik: np.ndarray, n_tokens: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Token-weighted perplexity exp(−Σ w·n·ll / Σ w·n) for each row of bootstrap ``weights`` (R × texts)."""
    return np.exp(-(weights * n_tokens * loglik).sum(axis=-1) / (weights * n_tokens).sum(axis=-1))


def _resample_weights(n_texts: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap counts of each text per resample (R × texts)."""
    draws = rng.integers(0, n_texts, size=(n_resamples, n_texts))
    return np.stack([np.bincount(row, minlength=n_texts) for row in draws]).astype(np.float64)


def language_perplexity(loglik: Sequence[np.ndarray], n_tokens: Sequence[np.ndarray], *, seed: int = 0,
                        n_resamples: int = 1000) -> list[dict[str, float | list[float]]]:
    """Per language: perplexity of its reference text (token-weighted over texts) with a 95% bootstrap CI
    over texts. ``loglik[l]``: mean log-likelihood per predicted token of each text; ``n_tokens[l]``: the
    predicted tokens of each text."""
    rng = np.random.default_rng(seed)
    rows = []
    for ll, n in zip(loglik, n_tokens):
        ll, n = np.asarray(ll, float), np.asarray(n, float)
        draws = _perplexity(ll, n, _resample_weights(len(ll), n_resamples, rng))
        rows.append({"perplexity": float(_perplexity(ll, n, np.ones(len(ll)))),
                     "ci95": [float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))],
                     "n_texts": int(len(ll)), "n_tokens": int(n.sum())})
    return rows


def deactivation_matrix(clean: Sequence[np.ndarray], ablated: Sequence[np.ndarray], n_tokens: Sequence[np.ndarray],
                        *, seed: int = 0, n_resamples: int = 1000) -> dict[str, np.ndarray]:
    """Perplexity ratios (deactivated / clean) of every language's text under every deactivated set.

    ``clean[l]`` (texts,) and ``ablated[l]`` (sets, texts) hold language l's per-text mean log-likelihood per
    token; ``n_tokens[l]`` its predicted tokens per text. Returns ``ratio`` and ``low`` / ``high`` (sets ×
    languages): a 95% bootstrap CI resampling each language's texts, clean and deactivated together.
    """
    rng = np.random.default_rng(seed)
    n_sets = np.asarray(ablated[0]).shape[0]
    ratio, low, high = (np.zeros((n_sets, len(clean))) for _ in range(3))
    for lang, (base, changed, n) in enumerate(zip(clean, ablated, n_tokens)):
        base, changed, n = np.asarray(base, float), np.asarray(changed, float), np.asarray(n, float)
        weights = _resample_weights(len(base), n_resamples, rng)
        clean_draws = _perplexity(base, n, weights)
        clean_ppl = _perplexity(base, n, np.ones(len(base)))
        for row in range(n_sets):
            ratio[row, lang] = _perplexity(changed[row], n, np.ones(len(base))) / clean_ppl
            draws = _perplexity(changed[row], n, weights) / clean_draws
            low[row, lang], high[row, lang] = np.quantile(draws, 0.025), np.quantile(draws, 0.975)
    return {"ratio": ratio, "low": low, "high": high}


def diagonal_dominance(ratio: np.ndarray) -> list[dict[str, float | None]]:
    """Per deactivated language (row l of a square ratio matrix): the rise of its own perplexity (ratio − 1),
    the mean rise of the other languages', and how many times larger the own rise is (None unless both rises
    are positive: otherwise "N× as much" has no meaning)."""
    ratio = np.asarray(ratio, dtype=np.float64)
    rows = []
    for lang in range(ratio.shape[0]):
        own = float(ratio[lang, lang] - 1.0)
        others = float(np.delete(ratio[lang], lang).mean() - 1.0)
        rows.append({"own_rise": own, "others_rise": others,
                     "times": own / others if others > 0 and own > 0 else None})
    return rows
