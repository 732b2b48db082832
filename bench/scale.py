"""Benchmark the scale-out on this machine: the run's harvest of N texts on the default model, locally and on
a local Ray instance with 1 and 2 workers.

Prints seconds for each and two ratios: Ray's overhead with 1 worker (Ray 1 ÷ local, target ≤ 1.15×) and the
speed-up with 2 workers (Ray 1 ÷ Ray 2, target ≥ 1.6×), plus the state bytes per shard. Each Ray worker uses
one torch thread (one CPU each); for a like-for-like 1-worker comparison the local run is also timed with one
torch thread (the local default uses every core). Texts: the bundled reference sentences, repeated.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPUS = ROOT / "audit" / "data" / "reference.txt"


def texts(n: int) -> list[str]:
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    return [lines[i % len(lines)] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--shard-size", type=int, default=512)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    from audit.execution.executor import Executor
    from audit.execution.ray_executor import ModelSpec, RayExecutor
    from audit.model.loading import load_model

    corpus = texts(args.texts)
    settings = {"batch_size": 32, "max_length": 128, "token_moments": False, "outputs": False}
    model = load_model("default", device="cpu")
    seconds: dict[str, float] = {}

    Executor(progress=False).harvest(model, corpus[:256], settings=settings, description="warm-up")
    threads = torch.get_num_threads()
    for label, count in ((f"local ({threads} threads)", threads), ("local (1 thread)", 1)):
        torch.set_num_threads(count)
        start = time.perf_counter()
        Executor(progress=False).harvest(model, corpus, settings=settings, description="bench")
        seconds[label] = time.perf_counter() - start
    torch.set_num_threads(threads)

    for workers in (1, 2):
        executor = RayExecutor(ModelSpec(model="default"), expected_sha256=model.weights_sha256, workers=workers,
                               shard_size=args.shard_size, progress=False)
        try:
            start = time.perf_counter()
            acts = executor.harvest(model, corpus, settings=settings, description="bench")
            seconds[f"ray ({workers} worker{'s' if workers > 1 else ''})"] = time.perf_counter() - start
        finally:
            executor.close()

    per_text = acts.max[0].nbytes + acts.mean[0].nbytes + 8 + 1
    print(f"{args.texts} texts, default model ({model.n_layers} x {model.neurons_per_layer} neurons), "
          f"shards of {args.shard_size} texts")
    for label, value in seconds.items():
        print(f"  {label:>22}: {value:7.1f} s  ({args.texts / value:6.0f} texts/s)")
    print(f"Ray overhead, 1 worker vs local 1 thread: {seconds['ray (1 worker)'] / seconds['local (1 thread)']:.2f}x "
          "(target <= 1.15x)")
    print(f"speed-up, 2 workers vs 1 worker: {seconds['ray (1 worker)'] / seconds['ray (2 workers)']:.2f}x "
          "(target >= 1.6x)")
    print(f"speed-up, 2 workers vs local {threads} threads: "
          f"{seconds[f'local ({threads} threads)'] / seconds['ray (2 workers)']:.2f}x")
    print(f"state per shard: {per_text * args.shard_size / 1e6:.1f} MB ({per_text / 1e3:.1f} KB per text)")


if __name__ == "__main__":
    main()
