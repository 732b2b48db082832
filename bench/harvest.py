"""Benchmark the harvest on the default model (or ``--model smollm2``, a causal LM; ``--device cuda``).

Prints (1) harvest time over the same batches as a bare forward pass (target ≤ 1.10× on CPU), (2) peak memory
beyond the per-text aggregates at 1× and 10× corpus size, each measured in a fresh process (target: flat),
and with ``--full-audit`` (3) a whole audit of the toxicity set as a multiple of its harvest, with peak RSS.
Corpus: the bundled reference sentences (audit/data/reference.txt); ``--texts N`` takes the first N.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "audit" / "data" / "reference.txt"


def corpus(scale: int, limit: int | None = None) -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[:limit]
    return lines * scale  # same texts repeated: same token-length mix at every scale


def time_ratio(args: argparse.Namespace) -> dict[str, float]:
    import torch

    from audit.model.harvest import harvest, tokenize
    from audit.model.loading import load_model

    batch_size, repeats = args.batch_size, args.repeats
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    texts = corpus(1, args.texts)
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    order = np.argsort([len(text) for text in texts], kind="stable")  # the batches harvest forms
    batches = [[texts[i] for i in order[s:s + batch_size]] for s in range(0, len(texts), batch_size)]
    base = model.module.base_model

    def bare() -> None:
        with torch.inference_mode():
            for batch in batches:
                encoded = tokenize(model, batch, 128)
                encoded.pop("special_tokens_mask")
                base(**{k: v.to(model.device) for k, v in encoded.items()})
        sync()

    def hooked() -> None:
        harvest(model, texts, batch_size=batch_size, progress=False)
        sync()

    bare()  # warm-up
    timings = {"bare": [], "harvest": []}
    for _ in range(repeats):  # interleave so drift in machine load hits both alike
        for name, fn in (("bare", bare), ("harvest", hooked)):
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in timings.items()}
    return {"texts": len(texts), "bare_s": best["bare"], "harvest_s": best["harvest"],
            "ratio": best["harvest"] / best["bare"]}


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def full_audit(args: argparse.Namespace) -> None:
    """A whole audit of the toxicity set (ablation, evidence, neuron classes) over its harvest time; peak RSS."""
    from audit.config import RunConfig
    from audit.model.loading import load_model
    from audit.probes.probeset import BUNDLED_DIR, load_probesets
    from audit.stages.audit import run_audit

    model = load_model(args.model, device=args.device, dtype=args.dtype)
    result = run_audit(model, load_probesets([BUNDLED_DIR / "toxicity.yaml"]), RunConfig(progress=False))
    timings = result.run.timings_s
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"audit  toxicity: {result.run.duration_s:.1f} s in all, harvest {timings['harvest:toxicity']:.1f} s -> "
          f"ratio {result.run.duration_s / timings['harvest:toxicity']:.1f}x; peak RSS {peak:.0f} MB; stages "
          + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def memory_child(scale: int, batch_size: int) -> None:
    """Run in a fresh process: peak RSS growth during harvest (sampled every 2 ms), less the aggregates."""
    import threading

    from audit.model.harvest import harvest
    from audit.model.loading import load_model

    model = load_model("default", device="cpu")
    texts = corpus(scale)
    harvest(model, texts[:64], batch_size=batch_size, progress=False)  # warm allocator and kernels
    before, peak, done = rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    acts = harvest(model, texts, batch_size=batch_size, progress=False)
    done.set()
    sampler.join()
    aggregates = (acts.max.nbytes + acts.mean.nbytes + acts.n_tokens.nbytes + acts.truncated.nbytes) / 2**20
    growth = max(peak[0], rss_mb()) - before
    print(json.dumps({"scale": scale, "texts": len(texts), "tokens": acts.token_count,
                      "aggregates_mb": aggregates, "peak_growth_mb": growth,
                      "beyond_aggregates_mb": max(growth - aggregates, 0.0)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="default", help="default | smollm2 | a folder or .gguf file")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--texts", type=int, help="use the first N reference sentences (default: all 1,200)")
    parser.add_argument("--skip-memory", action="store_true", help="only the time ratio (and --full-audit)")
    parser.add_argument("--full-audit", action="store_true", help="also time a whole toxicity audit")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        memory_child(args.child, args.batch_size)
        return
    speed = time_ratio(args)
    print(f"time   {speed['texts']} texts: bare forward {speed['bare_s']:.2f} s, harvest {speed['harvest_s']:.2f} s"
          f" -> ratio {speed['ratio']:.3f}x (target <= 1.10x on CPU) [{args.model}, {args.device}]")
    if args.full_audit:
        full_audit(args)
    if args.skip_memory:
        return
    rows = []
    for scale in (1, 10):
        done = subprocess.run([sys.executable, __file__, "--child", str(scale), "--batch-size", str(args.batch_size)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        print(f"memory {row['scale']:>2}x ({row['texts']} texts, {row['tokens']} tokens): aggregates "
              f"{row['aggregates_mb']:.0f} MB, peak growth {row['peak_growth_mb']:.0f} MB, beyond aggregates "
              f"{row['beyond_aggregates_mb']:.0f} MB")
    flat = (rows[1]["beyond_aggregates_mb"] + 1) / (rows[0]["beyond_aggregates_mb"] + 1)
    print(f"memory beyond aggregates, 10x vs 1x: ratio {flat:.2f} (target: flat, ~1.0)")


if __name__ == "__main__":
    main()
