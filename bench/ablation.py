"""Benchmark the ablation stage (target + 20 null sets + collateral cost) as a multiple of one harvest.

Default model, bundled toxicity probe set, default settings. Target: <= 5x.
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
    parser.add_argument("--probeset", default=str(ROOT / "probesets" / "toxicity.yaml"))
    args = parser.parse_args()

    from audit.config import RunConfig
    from audit.model.harvest import harvest
    from audit.model.loading import load_model
    from audit.probes.probeset import load_probesets
    from audit.probes.reference import load_reference
    from audit.stages.ablation import concept_ablation

    model = load_model("default", device="cpu")
    (probeset,) = load_probesets([args.probeset])
    config = RunConfig(progress=False)
    reference = load_reference()
    acts = harvest(model, probeset.texts, progress=False)
    harvest_s, ablation_s = [], []
    for _ in range(args.repeats):  # interleaved, best of each
        start = time.perf_counter()
        harvest(model, probeset.texts, batch_size=config.batch_size, progress=False)
        harvest_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        section = concept_ablation(model, probeset, acts, config, reference, seed=0)
        ablation_s.append(time.perf_counter() - start)
    h, a = min(harvest_s), min(ablation_s)
    print(f"harvest of {len(probeset.texts)} texts: {h:.2f} s; ablation stage ({config.null_sets} null sets, "
          f"{section['evaluated']['n_positive']}+{section['evaluated']['n_negative']} texts, collateral on "
          f"{section['collateral']['n_texts']} reference texts): {a:.2f} s -> {a / h:.2f}x one harvest (target <= 5x)")


if __name__ == "__main__":
    main()
