"""Seconds per neuron for an explanation (method A + N2G graph + held-out fidelity) on the default model.

Explains neurons drawn at random per layer (seeded), learning from their top contexts in the bundled
concept probe texts and scoring on the reference corpus, with torch on 2 threads. Prints seconds per
neuron, the share spent in forward passes, and mean graph F1 per layer beside both baselines.
Target: <= 1 s per neuron. Run: .venv/bin/python bench/explain.py [--per-layer 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from audit.model.contexts import keyed, top_contexts
from audit.model.loading import load_model
from audit.model.similarity import embedding_vectors
from audit.probes.probeset import BUNDLED_DIR, load_probesets
from audit.probes.reference import load_reference
from audit.stages.explain import HELDOUT_SAMPLE, REFERENCE_CONTEXTS, explain_neuron


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-layer", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="which neurons are drawn (default 0)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("default", device="cpu")
    rng = np.random.default_rng(args.seed)
    neurons = [(layer, int(n)) for layer in range(model.n_layers)
               for n in rng.choice(model.neurons_per_layer, args.per_layer, replace=False)]
    texts = [t for name in ("toxicity", "clinical") for t in load_probesets([BUNDLED_DIR / f"{name}.yaml"])[0].texts]
    reference = load_reference()
    tick = time.perf_counter()
    train = top_contexts(model, keyed(texts, "probes"), neurons, k=20)
    general = top_contexts(model, keyed(reference, "reference"), neurons, k=REFERENCE_CONTEXTS)
    contexts_s = time.perf_counter() - tick
    sample = [reference[i] for i in rng.choice(len(reference), HELDOUT_SAMPLE, replace=False)]
    vectors = embedding_vectors(model)
    totals, forwards, f1 = [], [], {}
    for i, (layer, neuron) in enumerate(neurons):
        heldout = list(dict.fromkeys([c["text"] for c in general.contexts(i)] + sample))
        record = explain_neuron(model, layer, neuron, train.contexts(i), heldout, vectors)
        if "timings_s" not in record:
            continue
        totals.append(record["timings_s"]["total"])
        forwards.append(record["timings_s"]["forward"])
        if record["fidelity"]["graph"]["n_firing"]:
            f1.setdefault(layer, []).append([record["fidelity"][k]["f1"] for k in ("graph", "token_lookup", "ngram")])
    per = float(np.mean(totals))
    print(f"{len(totals)} neurons explained, {args.threads} threads: {per:.2f} s per neuron "
          f"(target <= 1 s: ratio {per:.2f}), {100 * sum(forwards) / sum(totals):.0f}% in forward passes; "
          f"top contexts for all {len(neurons)} neurons over {len(texts) + len(reference)} texts: {contexts_s:.1f} s")
    print("layer  neurons  graph F1  token-lookup F1  bigram F1")
    for layer in sorted(f1):
        means = np.mean(f1[layer], axis=0)
        print(f"L{layer:<5d} {len(f1[layer]):7d}  {means[0]:8.2f}  {means[1]:15.2f}  {means[2]:9.2f}")


if __name__ == "__main__":
    main()
