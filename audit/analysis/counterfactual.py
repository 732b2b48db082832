"""Counterfactual sensitivity of a sentence encoder, calibrated against matched control swaps.

An encoder has no output distribution, so "does the model treat the groups differently" becomes: how far
does swapping the group words move an item's sentence embedding (1 − cosine), compared with swapping an
ordinary word of the same item for another word exactly as close to it as the group words are to each
other (in the model's own input-embedding space)? A group swap that moves the embedding no more than such a
control edit is ordinary lexical variation; the excess is what the groups themselves add. Pure functions
over strings and arrays: the word vectors and the embeddings come from the caller.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from typing import Sequence

import numpy as np
from scipy import stats

WORD = re.compile(r"[^\W\d_]+")  # a run of letters (any script)
MIN_CONTROL_LENGTH = 3  # shorter shared words (articles, "is", "to") are not used as controls
STEM = 4  # a candidate sharing this many leading letters with the word is a form of it (surgeon, surgical)


def words(text: str) -> list[str]:
    return WORD.findall(text)


def differing_words(versions: Sequence[str]) -> list[tuple[str, str]]:
    """The word pairs swapped between each pair of versions (one-for-one replacements only)."""
    found = []
    split = [words(version) for version in versions]
    for i, left in enumerate(split):
        for right in split[i + 1:]:
            matcher = SequenceMatcher(None, left, right, autojunk=False)
            for tag, a0, a1, b0, b1 in matcher.get_opcodes():
                if tag == "replace" and a1 - a0 == b1 - b0:
                    found += list(zip(left[a0:a1], right[b0:b1]))
    return found


def shared_words(versions: Sequence[str], *, min_length: int = MIN_CONTROL_LENGTH) -> list[str]:
    """Words every version contains at matching places, longest first (ties: earlier first), each once."""
    split = [words(version) for version in versions]
    keep = set(range(len(split[0])))
    for other in split[1:]:
        matcher = SequenceMatcher(None, split[0], other, autojunk=False)
        keep &= {block.a + k for block in matcher.get_matching_blocks() for k in range(block.size)}
    chosen = [split[0][i] for i in sorted(keep) if len(split[0][i]) >= min_length]
    unique = list(dict.fromkeys(chosen))
    return sorted(unique, key=lambda word: -len(word))


def inflection(word: str, other: str, *, stem: int = STEM) -> bool:
    """Whether ``other`` looks like a form of ``word`` (same leading letters), not a different word."""
    a, b = word.lower(), other.lower()
    k = min(len(a), len(b), stem)
    return a[:k] == b[:k]


def matched_substitute(word: str, candidates: Sequence[tuple[str, float]], target: float) -> tuple[str, float] | None:
    """Among (candidate, similarity to ``word``), the real word (letters only, not an inflection of ``word``)
    whose similarity is closest to ``target``, the group words' own similarity."""
    usable = [(c, s) for c, s in candidates if WORD.fullmatch(c) and not inflection(word, c)]
    return min(usable, key=lambda row: (abs(row[1] - target), row[0])) if usable else None


def replace_word(text: str, word: str, substitute: str) -> str:
    """``text`` with the first whole-word ``word`` replaced, capitalised as it was."""
    if word[:1].isupper():
        substitute = substitute[:1].upper() + substitute[1:]
    return re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", lambda _: substitute, text, count=1)


def sensitivity_rows(group_shift: np.ndarray, control_shift: np.ndarray, pairs: Sequence[tuple[str, str]], *,
                     seed: int, n_resamples: int = 2000) -> list[dict]:
    """Per group pair (rows of ``group_shift``, pairs × items; ``control_shift`` items, NaN where an item has
    no control): mean shifts, excess = mean(group − control) and ratio of means, with percentile bootstrap
    95% CIs over the items that have a control."""
    control_shift = np.asarray(control_shift, dtype=np.float64)
    usable = ~np.isnan(control_shift)
    rows = []
    for k, (a, b) in enumerate(pairs):
        group = np.asarray(group_shift[k], dtype=np.float64)[usable]
        control = control_shift[usable]
        row = {"group": a, "versus": b, "n_items": int(usable.sum()), "group_shift": float(group.mean()),
               "control_shift": float(control.mean()), "excess": float((group - control).mean()),
               "excess_ci95": [float(group.mean() - control.mean())] * 2,
               "ratio": float(group.mean() / control.mean()) if control.mean() > 0 else None, "ratio_ci95": None}
        if len(group) >= 2 and np.ptp(group - control) > 0:
            rng = np.random.default_rng(seed + k)
            excess = stats.bootstrap((group - control,), np.mean, n_resamples=n_resamples, method="percentile",
                                     rng=rng).confidence_interval
            row["excess_ci95"] = [float(excess.low), float(excess.high)]
            ratio = stats.bootstrap((group, control), lambda g, c: np.mean(g) / np.mean(c), paired=True,
                                    n_resamples=n_resamples, method="percentile",
                                    rng=np.random.default_rng(seed + 100 + k)).confidence_interval
            if np.isfinite(ratio.low) and np.isfinite(ratio.high):
                row["ratio_ci95"] = [float(ratio.low), float(ratio.high)]
        rows.append(row)
    return rows


def group_word_similarity(versions: Sequence[str], similarity) -> float | None:
    """Mean similarity of the words an item swaps between its versions (``similarity(a, b)`` is None for a
    word the vectors lack); None when no swapped pair can be compared (names, multi-word swaps)."""
    found = [s for a, b in differing_words(versions) if (s := similarity(a, b)) is not None]
    return float(np.mean(found)) if found else None


def control_edits(versions: Sequence[str], neighbours, target: float, *,
                  per_item: int = 2) -> list[tuple[str, str, float]]:
    """Up to ``per_item`` control swaps (word, substitute, similarity) of words every version shares, longest
    words first, each substitute as close to its word as ``target`` (``neighbours(word)`` lists candidates)."""
    edits = []
    for word in shared_words(versions):
        found = matched_substitute(word, neighbours(word), target)
        if found is not None:
            edits.append((word, found[0], found[1]))
        if len(edits) == per_item:
            break
    return edits
