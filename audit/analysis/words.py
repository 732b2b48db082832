"""Words as a reader sees them: function words (from a well-kept stop list plus IDF over the reference
corpus), and tokenizer pieces merged back into whole words. Pure functions over strings.

Function words: scikit-learn's English stop list (the Glasgow Information Retrieval group's list), less the
content words that list is known to hold ('fire', 'system', 'bill', …), plus every word that appears in at
least :data:`COMMON_SHARE` of the reference corpus's lines — the IDF route, which also covers the function
words of any other language the reference corpus is written in.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# content words in scikit-learn's stop list (its documentation warns that the list has such entries)
_NOT_FUNCTION = frozenset("bill computer fire system interest serious sincere detail describe bottom cry mill "
                          "thick thin amount empty front top full found con de co inc ltd eg ie etc".split())
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) - _NOT_FUNCTION
# English contraction pieces a tokenizer splits off ("don't" -> don ' t): function words, not content
CONTRACTION_PIECES = frozenset("don doesn didn isn wasn aren weren wouldn couldn shouldn haven hasn hadn "
                               "ll re ve s t m d".split())
COMMON_SHARE = 0.1  # a word in at least this share of reference lines is a function word (IDF ≤ ln 10)
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
SPACE_MARKS = ("Ġ", "▁")


def common_words(lines: Iterable[str], *, share: float = COMMON_SHARE) -> frozenset[str]:
    """Words (lower-cased) found in at least ``share`` of ``lines``: low-IDF words of the corpus's language."""
    counts: Counter[str] = Counter()
    n = 0
    for line in lines:
        n += 1
        counts.update({w.lower() for w in WORD.findall(line)})
    return frozenset(w for w, c in counts.items() if n and c / n >= share)


def is_function_word(word: str, common: Iterable[str] = ()) -> bool:
    """True for a stop word or a word common across the reference corpus (``common``), and for text
    without letters (punctuation, numbers), which carries no content either."""
    key = word.strip().lower()
    if not any(ch.isalpha() for ch in key):
        return True
    return len(key) == 1 or key in STOP_WORDS or key in CONTRACTION_PIECES or key in common


def is_continuation(token: str, *, space_marked: bool) -> bool:
    """Whether a tokenizer piece continues the word before it: BERT's ``##`` pieces, and in byte-level BPE
    or SentencePiece vocabularies (``space_marked``) a letter/digit piece without the leading space mark."""
    if token.startswith("##"):
        return True
    if space_marked:
        return not token.startswith(SPACE_MARKS) and token[:1].isalnum()
    return False


def word_spans(text: str, spans: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """Group token character spans into words: ranges [first, last) of token indices whose spans touch
    with letters or digits on both sides of the joint (so 'bi' + 'opsy' and 'rec ##om ##mend' are one word,
    'word' + ',' are two)."""
    groups: list[tuple[int, int]] = []
    for i, (start, end) in enumerate(spans):
        if groups and i > 0:
            prev_end = spans[i - 1][1]
            joined = (start == prev_end and 0 < start < len(text) and text[start - 1].isalnum()
                      and text[start].isalnum())
            if joined:
                groups[-1] = (groups[-1][0], i + 1)
                continue
        groups.append((i, i + 1))
    return groups


def merge_pieces(tokens: Sequence[str], *, space_marked: bool) -> list[tuple[int, int, str]]:
    """Tokens (in reading order) grouped into words without the text: (first, last, word) per word, the
    wildcard ``*`` always its own word."""
    out: list[tuple[int, int, str]] = []
    for i, token in enumerate(tokens):
        clean = token.replace("Ġ", " ").replace("▁", " ").removeprefix("##").strip()
        if (out and token != "*" and tokens[i - 1] != "*" and is_continuation(token, space_marked=space_marked)):
            first, _, word = out[-1]
            out[-1] = (first, i + 1, word + clean)
        else:
            out.append((i, i + 1, clean if token != "*" else "*"))
    return out


def space_marked_vocabulary(tokens: Iterable[str]) -> bool:
    """Whether a vocabulary marks word starts with a space mark (byte-level BPE 'Ġ', SentencePiece '▁')."""
    return any(t.startswith(SPACE_MARKS) for t in tokens)
