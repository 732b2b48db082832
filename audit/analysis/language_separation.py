"""Does a model treat a parallel set's languages as languages it knows? Pure functions over harvested arrays.

Two signs that it does not, both from the translations of one parallel set:

* tokenizer parity (Petrov et al. 2023): tokens a language needs for the same content, relative to the
  reference language; an unfamiliar language is shredded into many short pieces;
* translation retrieval: with each language's mean response removed (so language identity alone cannot
  match), is a text's nearest reference-language text its own translation? A model that understands both
  languages represents a sentence and its translation alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_RETRIEVAL = 0.5  # share of texts matched to their own translation for a language to count as served
MAX_PARITY = 2.0  # tokens relative to the reference language beyond which the tokenizer shreds the language
UNIFORM_ENTROPY = 0.9  # LAPE neurons' mean normalised entropy above which they hardly prefer any language


@dataclass(frozen=True)
class Separation:
    """Per language (columns in group order): parity, retrieval accuracy and cosines versus the reference."""

    parity: np.ndarray
    retrieval: np.ndarray
    translation_cosine: np.ndarray
    other_cosine: np.ndarray
    chance: float


def tokenizer_parity(n_tokens: np.ndarray, reference: int) -> np.ndarray:
    """Total tokens of each language's texts over the reference language's (groups × items counts)."""
    totals = np.asarray(n_tokens, dtype=np.float64).sum(axis=1)
    return totals / max(totals[reference], 1.0)


def _unit(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return centred / np.where(norms > 0, norms, 1.0)


def translation_retrieval(responses: np.ndarray, reference: int) -> tuple[np.ndarray, ...]:
    """From per-text responses (groups × items × features): per language, the share of retrievals that find
    the translation (both directions: language → reference and back), the mean cosine of translation pairs,
    and the mean cosine of non-translation pairs; each language centred on its own mean first."""
    responses = np.asarray(responses, dtype=np.float64)
    n_groups, n_items = responses.shape[:2]
    ref = _unit(responses[reference])
    retrieval, same, other = (np.zeros(n_groups) for _ in range(3))
    off = ~np.eye(n_items, dtype=bool)
    for g in range(n_groups):
        cos = _unit(responses[g]) @ ref.T  # items of g × items of the reference
        hits = (cos.argmax(axis=1) == np.arange(n_items)).mean() + (cos.argmax(axis=0) == np.arange(n_items)).mean()
        retrieval[g] = hits / 2
        same[g] = float(np.diag(cos).mean())
        other[g] = float(cos[off].mean()) if n_items > 1 else 0.0
    return retrieval, same, other


def separation(responses: np.ndarray, n_tokens: np.ndarray, reference: int) -> Separation:
    """Parity and retrieval of every language against the reference language."""
    retrieval, same, other = translation_retrieval(responses, reference)
    return Separation(parity=tokenizer_parity(n_tokens, reference), retrieval=retrieval, translation_cosine=same,
                      other_cosine=other, chance=1.0 / np.asarray(responses).shape[1])


def served(result: Separation, reference: int) -> np.ndarray:
    """Languages the model appears to know (bool per group): translations found at least ``MIN_RETRIEVAL``
    of the time and a tokenizer parity at most ``MAX_PARITY``; the reference language counts as served."""
    ok = (result.retrieval >= MIN_RETRIEVAL) & (result.parity <= MAX_PARITY)
    ok[reference] = True
    return ok
