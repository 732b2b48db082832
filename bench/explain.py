"""Explanation scores per layer, beside the published N2G F1, and seconds per neuron.

Explains neurons drawn at random per layer (seeded), learning from their top contexts in the bundled concept
probe texts (toxicity + clinical) and scoring on held-out text as the audit does: 200 random reference-corpus
lines, each neuron's 10 strongest reference lines and the probe texts it did not learn from. Prints per layer
the mean detection / fuzzing balanced accuracy, simulation correlation and F1 (explanation | token lookup |
a random other neuron's explanation; undefined scores left out of the mean, their count shown), the share of
explanations the causal check supports, and the published N2G F1 (Foote et al. 2023, SoLU-6L: 0.68 in layer 0
to 0.37 in layer 5; only those two end points are quoted here). Targets: <= 0.5 s per neuron on the default
model, <= 2 s on SmolLM2.

Run: .venv/bin/python bench/explain.py [--model smollm2] [--per-layer 3] [--layers 0,5,10] [--json out.json]
     .venv/bin/python bench/explain.py --results reports/…/results.json   (the same table over an audit's
     reported neurons, read from its results.json; no model is run)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from audit.analysis.explanation_scores import SCORES
from audit.model.contexts import keyed, top_contexts
from audit.model.loading import load_model
from audit.model.similarity import embedding_vectors
from audit.probes.probeset import BUNDLED_DIR, load_probesets
from audit.probes.reference import load_reference
from audit.stages.explain import HELDOUT_SAMPLE, REFERENCE_CONTEXTS, explain_batch

PUBLISHED_N2G_F1 = {0: 0.68, 5: 0.37}  # SoLU-6L, Foote et al. 2023 (end points as quoted in issue 22)
TARGET_S = {"default": 0.5, "smollm2": 2.0}
PREDICTORS = ("explanation", "token_lookup", "random_explanation")


def row_of(layer: int, neuron: int, record: dict) -> dict:
    """One explained neuron's scores (explanation and both baselines) and causal verdict."""
    row = {"layer": layer, "neuron": neuron, "description": record.get("description")}
    if "scores" in record:
        row["scores"] = {kind: {"explanation": record["scores"][kind]["value"],
                                **{b: record["scores"][kind]["baselines"][b]["value"]
                                   for b in ("token_lookup", "random_explanation")}} for kind in SCORES}
        row["causal_supported"] = record.get("causal", {}).get("supported")
    return row


def table(rows: list[dict], layers: list[int]) -> None:
    print("Per layer, mean over explained neurons: explanation / token lookup / random other explanation "
          "(n: neurons with a defined score)")
    header = f"{'layer':5} " + " ".join(f"{kind:>22}" for kind in SCORES) + "  causal  N2G F1 (SoLU-6L)"
    print(header)
    for layer in layers:
        mine = [r for r in rows if r["layer"] == layer and "scores" in r]
        cells = []
        for kind in SCORES:
            means = []
            for p in PREDICTORS:
                values = [r["scores"][kind][p] for r in mine if r["scores"][kind][p] is not None]
                means.append(f"{np.mean(values):.2f}" if values else "—")
            n = sum(r["scores"][kind]["explanation"] is not None for r in mine)
            cells.append(f"{'/'.join(means)} ({n})")
        judged = [r["causal_supported"] for r in mine if r["causal_supported"] is not None]
        causal = f"{sum(judged)}/{len(judged)}" if judged else "—"
        published = PUBLISHED_N2G_F1.get(layer)
        print(f"L{layer:<4d} " + " ".join(f"{c:>22}" for c in cells)
              + f"  {causal:>6}  {published if published is not None else '—'}")


def from_results(path: str) -> None:
    """The per-layer table over the reported neurons of an audit (each neuron once)."""
    with open(path, encoding="utf-8") as handle:
        result = json.load(handle)
    seen, rows = set(), []
    for section in result["probesets"]:
        entries = list(section.get("neurons") or []) + list((section.get("disparity") or {}).get("neurons", []))
        for entry in entries:
            key = (entry["layer"], entry["neuron"])
            if "explanation" in entry and key not in seen:
                seen.add(key)
                rows.append(row_of(*key, entry["explanation"]))
    per = result["run"]["timings_s"].get("explain:per_neuron")
    print(f"{result['model']['name']}: {len(rows)} reported neurons explained"
          + (f", {per:.2f} s per neuron in the audit" if per is not None else ""))
    table(rows, sorted({r["layer"] for r in rows}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="default")
    parser.add_argument("--per-layer", type=int, default=3)
    parser.add_argument("--layers", default=None, help="comma-separated layers (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="which neurons are drawn (default 0)")
    parser.add_argument("--json", default=None, help="also write the per-neuron scores here")
    parser.add_argument("--results", default=None, help="tabulate an audit's results.json instead of running")
    args = parser.parse_args()
    if args.results:
        from_results(args.results)
        return
    torch.set_num_threads(args.threads)
    model = load_model(args.model, device="cpu")
    layers = [int(x) for x in args.layers.split(",")] if args.layers else list(range(model.n_layers))
    rng = np.random.default_rng(args.seed)
    neurons = [(layer, int(n)) for layer in layers
               for n in rng.choice(model.neurons_per_layer, args.per_layer, replace=False)]
    texts = [t for name in ("toxicity", "clinical") for t in load_probesets([BUNDLED_DIR / f"{name}.yaml"])[0].texts]
    reference = load_reference()
    vectors = embedding_vectors(model)
    tick = time.perf_counter()
    train = top_contexts(model, keyed(texts, "probes"), neurons, k=20)
    general = top_contexts(model, keyed(reference, "reference"), neurons, k=REFERENCE_CONTEXTS)
    contexts_s = time.perf_counter() - tick
    sample = [reference[i] for i in rng.choice(len(reference), HELDOUT_SAMPLE, replace=False)]
    jobs = [(layer, neuron, "probes", train.contexts(i)) for i, (layer, neuron) in enumerate(neurons)]
    tops = {n: general.contexts(i) for i, n in enumerate(neurons)}
    tick = time.perf_counter()
    batch = explain_batch(model, jobs, {"probes": texts}, sample, tops, vectors)
    spent = time.perf_counter() - tick
    per = spent / len(neurons)
    rows = [row_of(layer, neuron, built.record) for (layer, neuron, _), built in sorted(batch.built.items())]
    target = TARGET_S.get(args.model)
    print(f"{args.model}: {len(neurons)} neurons explained, {args.threads} threads: {per:.2f} s per neuron"
          + (f" (target <= {target} s)" if target else "") + f", {100 * batch.forward_s / spent:.0f}% in forward "
          f"passes; top contexts for all over {len(texts) + len(reference)} texts: {contexts_s:.1f} s")
    table(rows, layers)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"model": args.model, "seconds_per_neuron": per, "neurons": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
