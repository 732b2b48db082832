"""Which offline similarity backend gives better neighbours? Synonym pairs written for this project.

For each pair (a, b) both backends can embed: the rank of b among a's neighbours (and of a among b's).
Prints hit@5, hit@20 and mean reciprocal rank per backend, and the mean cosine of synonym pairs against
random pairs (a separation ratio). Run: .venv/bin/python bench/similarity.py
"""

from __future__ import annotations

import time

import numpy as np

from audit.model.loading import load_model
from audit.model.similarity import embedding_vectors, encoder_vectors

SYNONYMS = [
    ("big", "large"), ("small", "little"), ("quick", "fast"), ("begin", "start"), ("end", "finish"),
    ("happy", "glad"), ("sad", "unhappy"), ("angry", "furious"), ("stupid", "dumb"), ("idiot", "moron"),
    ("kill", "murder"), ("hate", "despise"), ("doctor", "physician"), ("illness", "disease"),
    ("medicine", "drug"), ("surgery", "operation"), ("tumor", "cancer"), ("nurse", "caregiver"),
    ("car", "automobile"), ("house", "home"), ("child", "kid"), ("woman", "lady"), ("man", "gentleman"),
    ("buy", "purchase"), ("shout", "yell"), ("rich", "wealthy"), ("ugly", "hideous"), ("smart", "clever"),
    ("road", "street"), ("stone", "rock"), ("fear", "terror"), ("garbage", "trash"), ("pain", "ache"),
    ("hospital", "clinic"), ("mother", "mom"), ("fight", "battle"), ("error", "mistake"), ("job", "work"),
    ("couch", "sofa"), ("shop", "store"),
]


def ranks(vectors, pairs) -> list[int]:
    found = []
    for a, b in pairs:
        for x, y in ((a, b), (b, a)):
            scores = vectors.matrix @ vectors.vector(x)
            order = [vectors.words[i].lower() for i in np.argsort(-scores)[:1000] if vectors.words[i].lower() != x]
            found.append(order.index(y) + 1 if y in order else 10_000)
    return found


def main() -> None:
    model = load_model("default", device="cpu")
    tick = time.perf_counter()
    backends = {"embeddings": embedding_vectors(model)}
    built = {"embeddings": time.perf_counter() - tick}
    tick = time.perf_counter()
    backends["encoder"] = encoder_vectors(model)
    built["encoder"] = time.perf_counter() - tick
    pairs = [(a, b) for a, b in SYNONYMS if all(v.vector(a) is not None and v.vector(b) is not None
                                                 for v in backends.values() for _ in (a, b))
             and all(a in v.index and b in v.index for v in backends.values())]
    print(f"{len(pairs)} of {len(SYNONYMS)} synonym pairs are whole words in the vocabulary")
    rng = np.random.default_rng(0)
    for name, vectors in backends.items():
        r = np.array(ranks(vectors, pairs))
        syn = np.mean([float(vectors.vector(a) @ vectors.vector(b)) for a, b in pairs])
        rand = vectors.random_vectors(400, rng)
        null = float(np.mean(np.sum(rand[:200] * rand[200:], axis=1)))
        print(f"{name:10s} words {len(vectors.words):6d}  built {built[name]:5.1f} s  hit@5 {np.mean(r <= 5):.2f}  "
              f"hit@20 {np.mean(r <= 20):.2f}  MRR {np.mean(1 / r):.3f}  synonym cos {syn:.2f} vs random {null:.2f}")


if __name__ == "__main__":
    main()
