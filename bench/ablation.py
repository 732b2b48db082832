"""Benchmark the ablation stage's cost per random neuron set, before and after the cost work of issue 21.

Default model, bundled toxicity probe set, default settings; the random sets are the headline dose's
activation-matched null. "Before" measures each set as the stage used to: a full forward from layer 0 on
both evaluation sides (concept and matched texts), one batch per forward. "After" is what the stage does
now: the verdict's null on the concept texts only, each forward starting at the first ablated layer from
the kept residual stream, several sets stacked per forward, clean outputs computed once. Target: after ≤
0.5 × before. ``--stage`` also times the whole ablation stage of the set (all doses, sequential nulls).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", type=int, default=40, help="random sets per timing")
    parser.add_argument("--model", default="default")
    parser.add_argument("--probeset", default=str(ROOT / "probesets" / "toxicity.yaml"))
    parser.add_argument("--stage", action="store_true", help="also time the whole ablation stage of the set")
    args = parser.parse_args()

    import numpy as np

    from audit.analysis.multiple_testing import sets_needed
    from audit.config import RunConfig
    from audit.model.harvest import harvest
    from audit.model.interventions import Runner
    from audit.model.loading import load_model
    from audit.probes.probeset import load_probesets
    from audit.probes.reference import load_reference
    from audit.stages.ablation import correct_ablations, plan_concept, reference_features, run_plan

    model = load_model(args.model, device="cpu")
    (probeset,) = load_probesets([args.probeset])
    config = RunConfig(progress=False)
    reference = load_reference()
    acts = harvest(model, probeset.texts, batch_size=config.batch_size, progress=False)
    features = reference_features(harvest(model, reference, token_moments=True, progress=False).token_stats())
    plan = plan_concept(model, probeset, acts, config, features, seed=0)
    dose = plan.doses[plan.headline]
    nulls = dose.matched_null(args.sets, 1)
    texts = probeset.texts
    pos = [texts[i] for i in plan.extra["pos_eval"]]
    both = pos + [texts[i] for i in plan.extra["neg_eval"]]
    first = int(np.min(dose.target.neurons)) // model.neurons_per_layer

    def per_set(make) -> float:
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            make().run(nulls)
            best = min(best, time.perf_counter() - start)
        return best / len(nulls)

    before = per_set(lambda: Runner(model, both, batch_size=config.batch_size, max_length=config.max_length,
                                    max_stack=config.batch_size, batch_rows=config.batch_size))
    after = per_set(lambda: Runner(model, pos, batch_size=config.batch_size, max_length=config.max_length,
                                   start_layers=[first]))
    print(f"{model.name}, {probeset.name}: headline dose k={dose.label} (first ablated layer {first}); "
          f"seconds per random set: before {before:.4f} s ({len(both)} texts, full forward), after {after:.4f} s "
          f"({len(pos)} texts from layer {first}, stacked) -> {after / before:.2f}x (target <= 0.5x)")
    if args.stage:
        n_sets = sets_needed(1)
        start = time.perf_counter()
        measured = run_plan(model, probeset, plan, config, reference, n_sets=n_sets, seed=0)
        correct_ablations([measured])
        ablation = measured.ablation
        spent = time.perf_counter() - start
        drawn = sum(row.n_null_sets + row.null_layer["n"] for row in ablation.dose_response)
        print(f"ablation stage: {plan.n_tests} doses, at most {n_sets} matched sets each, {drawn} random sets "
              f"drawn in all: {spent:.1f} s ({spent / drawn:.4f} s per drawn set, everything included)")


if __name__ == "__main__":
    main()
