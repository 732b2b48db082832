"""Word similarity for explanations: which words are like a neuron's top tokens, and their neighbours.

Backends share one interface (:class:`WordVectors`: a matrix of unit vectors over a word list):

- ``fasttext``: vectors the user supplies with ``--word-vectors FILE`` (.bin: a fastText model, which also
  embeds unseen words from their character n-grams; .vec: the text format, known words only).
- ``embeddings``: the audited model's own input embeddings over the whole-word entries of its vocabulary
  (nothing downloaded; works for any model).
- ``encoder``: the offline default encoder (all-MiniLM-L6-v2) run on each whole word of its vocabulary.

``bench/similarity.py`` measures which offline backend gives better neighbours on a synonym list;
:data:`DEFAULT_BACKEND` is the winner.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import AuditInputError
from ..inputs import check_input_file, iter_input_lines
from .loading import Model

WORD = re.compile(r"^[^\W\d_]{2,}$")  # a whole word: letters only, two or more
DEFAULT_BACKEND = "embeddings"
FASTTEXT_FLOOR = 0.6  # Kran et al.'s threshold for a semantic category in fastText space
BACKENDS = ("embeddings", "encoder")


def clean_token(token: str) -> str:
    """A tokenizer piece as a person reads it: without BPE/SentencePiece space marks or '##'."""
    return token.replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\n").removeprefix("##").strip()


def is_word_start(token: str) -> bool:
    """A piece that begins a word (not a '##' continuation)."""
    return not token.startswith("##")


@dataclass
class WordVectors:
    """Unit-length vectors for a word list, with nearest neighbours by cosine."""

    words: list[str]
    matrix: np.ndarray  # (words, dim), rows of unit length
    name: str
    model: object | None = None  # a fastText model for words outside the list (subword vectors)
    coherent_floor: float = 0.25  # mean similarity from which a word set reads as related in this space

    def __post_init__(self) -> None:
        self.index = {word: i for i, word in enumerate(self.words)}
        self._neighbours: dict[tuple[str, int], list[tuple[str, float]]] = {}

    def vector(self, word: str) -> np.ndarray | None:
        """The unit vector of ``word`` (case-insensitive), or None when the backend cannot embed it."""
        word = word.strip()
        for form in (word, word.lower()):
            if form in self.index:
                return self.matrix[self.index[form]]
        if self.model is not None and word:
            vector = np.asarray(self.model.get_word_vector(word), np.float32)
            norm = float(np.linalg.norm(vector))
            return vector / norm if norm > 0 else None
        return None

    def neighbours(self, word: str, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most similar other words (not ``word`` itself or its case variants), with cosine; ties in
        list order. Kept per word: explanations ask for the same words' neighbours many times."""
        if (word, k) not in self._neighbours:
            self._neighbours[(word, k)] = self._nearest(word, k)
        return list(self._neighbours[(word, k)])

    def _nearest(self, word: str, k: int) -> list[tuple[str, float]]:
        vector = self.vector(word)
        if vector is None:
            return []
        scores = self.matrix @ vector
        wanted = min(k + 16, len(scores))
        pool = np.arange(len(scores))
        if wanted < len(scores):  # every word scoring at least the wanted-th best (ties included), in list order
            pool = np.flatnonzero(scores >= np.partition(scores, len(scores) - wanted)[len(scores) - wanted])
        found: list[tuple[str, float]] = []
        for i in pool[np.argsort(-scores[pool], kind="stable")][:wanted]:
            candidate = self.words[int(i)]
            if candidate.lower() == word.lower().strip() or any(candidate.lower() == f.lower() for f, _ in found):
                continue
            found.append((candidate, float(scores[i])))
            if len(found) == k:
                break
        return found

    def random_vectors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` distinct random words' vectors (the null for coherence)."""
        return self.matrix[rng.choice(len(self.words), size=min(n, len(self.words)), replace=False)]


def whole_words(model: Model) -> tuple[list[str], list[int]]:
    """The vocabulary entries that are whole words (letters, word-initial), cleaned, with their token ids."""
    vocab = model.tokenizer.get_vocab()
    special = set(getattr(model.tokenizer, "all_special_ids", []))
    words, ids, seen = [], [], set()
    for token, token_id in sorted(vocab.items(), key=lambda item: item[1]):
        if token_id in special or not is_word_start(token):
            continue
        word = clean_token(token)
        if WORD.match(word) and word.lower() not in seen:
            seen.add(word.lower())
            words.append(word)
            ids.append(token_id)
    return words, ids


def embedding_vectors(model: Model) -> WordVectors:
    """The audited model's own input embeddings over its whole-word vocabulary entries."""
    words, ids = whole_words(model)
    if len(words) < 10:
        raise AuditInputError(f"--model: its vocabulary has only {len(words)} whole words; supply "
                              "--word-vectors FILE")
    table = model.module.get_input_embeddings().weight.detach().float().cpu().numpy()[ids]
    table = table - table.mean(axis=0)  # remove the shared component that makes every cosine positive
    # synonym pairs average cosine 0.51 here, random pairs -0.01 (bench/similarity.py): half-way is the floor
    return WordVectors(words=words, matrix=_unit(table), name="audited model's input embeddings",
                       coherent_floor=0.25)


def encoder_vectors(encoder: Model, *, batch_size: int = 512) -> WordVectors:
    """A sentence encoder (the default model) run on each whole word of its vocabulary, mean-pooled."""
    words, _ = whole_words(encoder)
    rows = []
    base = getattr(encoder.module, "base_model", encoder.module)
    with torch.inference_mode():
        for start in range(0, len(words), batch_size):
            encoded = encoder.tokenizer(words[start:start + batch_size], padding=True, return_tensors="pt")
            encoded = {k: v.to(encoder.device) for k, v in encoded.items()}
            hidden = base(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            rows.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
    return WordVectors(words=words, matrix=_unit(np.concatenate(rows)), name="default encoder over whole words",
                       coherent_floor=0.45)  # synonyms 0.72, random pairs 0.21 (bench/similarity.py)


def fasttext_vectors(path: str | Path, *, max_words: int = 200_000) -> WordVectors:
    """User-supplied fastText vectors: a .bin model or a .vec text file (the first ``max_words`` words)."""
    path = Path(path)
    try:
        check_input_file(path, "fastText vectors file")
    except AuditInputError as exc:
        raise AuditInputError(f"--word-vectors: {exc}") from None
    if path.suffix.lower() == ".bin":
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # its load-time warning is not ours to show
        try:
            model = fasttext.load_model(str(path))
        except ValueError as exc:
            raise AuditInputError(f"--word-vectors: {path}: not a fastText model ({exc})") from None
        words = [w for w in model.get_words() if WORD.match(w)][:max_words]
        if not words:
            raise AuditInputError(f"--word-vectors: {path}: holds no whole words")
        matrix = np.stack([model.get_word_vector(w) for w in words]).astype(np.float32)
        return WordVectors(words=words, matrix=_unit(matrix), name=f"fastText {path.name}", model=model,
                           coherent_floor=FASTTEXT_FLOOR)
    if path.suffix.lower() != ".vec":
        raise AuditInputError(f"--word-vectors: {path}: expected a fastText .bin or .vec file")
    return _read_vec(path, max_words)


def _read_vec(path: Path, max_words: int) -> WordVectors:
    words, rows, dim = [], [], None
    try:
        for number, line in iter_input_lines(path, "fastText vectors file"):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # the "count dim" header
                continue
            try:
                values = np.array(parts[1:], np.float32)
            except ValueError:
                raise AuditInputError(f"{path}: line {number} is not 'word v1 v2 …'") from None
            dim = dim or len(values)
            if len(values) != dim or dim == 0:
                raise AuditInputError(f"{path}: line {number} has {len(values)} values, expected {dim}")
            if WORD.match(parts[0]):
                words.append(parts[0])
                rows.append(values)
            if len(words) >= max_words:
                break
    except AuditInputError as exc:
        raise AuditInputError(f"--word-vectors: {exc}") from None
    if not words:
        raise AuditInputError(f"--word-vectors: {path}: holds no word vectors")
    return WordVectors(words=words, matrix=_unit(np.stack(rows)), name=f"fastText {path.name}",
                       coherent_floor=FASTTEXT_FLOOR)


def word_vectors(model: Model, path: str | Path | None = None, *, backend: str = DEFAULT_BACKEND) -> WordVectors:
    """The similarity backend for an explanation: the user's fastText file if given, else an offline one."""
    if path is not None:
        return fasttext_vectors(path)
    if backend == "encoder":
        from .loading import load_model

        return encoder_vectors(load_model("default", device=str(model.device)))
    return embedding_vectors(model)


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def similarity(a: Sequence[str], vectors: WordVectors) -> np.ndarray | None:
    """Vectors of the words ``a`` that the backend can embed (rows), or None when fewer than two can."""
    found = [v for v in (vectors.vector(w) for w in a) if v is not None]
    return np.stack(found) if len(found) >= 2 else None
