"""Benchmark the scale-out on this machine, locally and on a local Ray instance with 1 and 2 workers:
``--job run``, the run's harvest of N texts on the default model; ``--job compare``, the correlation step of
the default model against its sre-embedding-model fine-tune (or itself) over about T tokens.

Prints seconds for each and two ratios: Ray's overhead with 1 worker (Ray 1 ÷ local, target ≤ 1.15×) and the
speed-up with 2 workers (Ray 1 ÷ Ray 2, target ≥ 1.6×), plus the state bytes per shard. Each Ray worker uses
one thread for torch, numpy's BLAS and the correlation's products (one CPU each); for a like-for-like
1-worker comparison the local run is also timed with one thread for all three (the local default uses every
core). Texts: the bundled
reference sentences, repeated.
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


def timed(label: str, seconds: dict[str, float], work, threads: int | None = None) -> object:
    """Time ``work()``; ``threads`` caps torch's and the BLAS libraries' threads while it runs."""
    import torch
    from threadpoolctl import threadpool_limits

    before, setting = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    torch.set_num_threads(threads or before)
    if threads:  # also the correlation's own product threads, which follow OMP_NUM_THREADS as on a worker
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        with threadpool_limits(limits=threads):
            start = time.perf_counter()
            result = work()
            seconds[label] = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
        if setting is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = setting
    return result


def report(seconds: dict[str, float], threads: int) -> None:
    for label, value in seconds.items():
        print(f"  {label:>22}: {value:7.1f} s")
    print(f"Ray overhead, 1 worker vs local 1 thread: {seconds['ray (1 worker)'] / seconds['local (1 thread)']:.2f}x "
          "(target <= 1.15x)")
    print(f"speed-up, 2 workers vs 1 worker: {seconds['ray (1 worker)'] / seconds['ray (2 workers)']:.2f}x "
          "(target >= 1.6x)")
    print(f"speed-up, 2 workers vs local {threads} threads: "
          f"{seconds[f'local ({threads} threads)'] / seconds['ray (2 workers)']:.2f}x")


def bench_run(args: argparse.Namespace) -> None:
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
        timed(label, seconds, lambda: Executor(progress=False).harvest(model, corpus, settings=settings,
                                                                       description="bench"), count)
    for workers in (1, 2):
        executor = RayExecutor(ModelSpec(model="default"), expected_sha256=model.weights_sha256, workers=workers,
                               shard_size=args.shard_size, progress=False)
        try:
            acts = timed(f"ray ({workers} worker{'s' if workers > 1 else ''})", seconds,
                         lambda: executor.harvest(model, corpus, settings=settings, description="bench"))
        finally:
            executor.close()
    per_text = acts.max[0].nbytes + acts.mean[0].nbytes + 8 + 1
    print(f"run: {args.texts} texts, default model ({model.n_layers} x {model.neurons_per_layer} neurons), "
          f"shards of {args.shard_size} texts")
    report(seconds, threads)
    print(f"state per shard: {per_text * args.shard_size / 1e6:.1f} MB ({per_text / 1e3:.1f} KB per text)")


def bench_compare(args: argparse.Namespace) -> None:
    import torch

    from audit.analysis.correlation import CorrelationState, layer_pairs
    from audit.execution.executor import Executor
    from audit.execution.ray_executor import ModelSpec, RayExecutor
    from audit.model.harvest import tokenize
    from audit.model.loading import load_model

    try:
        import sre_embedding_model

        other = str(Path(sre_embedding_model.__file__).parent / "model_weights")
    except ImportError:
        other = "default"
    a, b = load_model("default", device="cpu"), load_model(other, device="cpu")
    lines = CORPUS.read_text(encoding="utf-8").splitlines()
    per_line = sum(int(tokenize(a, lines[i:i + 64], 128)["attention_mask"].sum())
                   for i in range(0, len(lines), 64)) / len(lines)
    corpus = texts(int(args.tokens / per_line))
    pairs = layer_pairs(a.n_layers, b.n_layers, "same")
    settings = {"align": "tokens", "batch_size": 32, "max_length": 128, "stride": 8, "precision": "bfloat16"}
    seconds: dict[str, float] = {}
    threads = torch.get_num_threads()
    for label, count in ((f"local ({threads} threads)", threads), ("local (1 thread)", 1)):
        local = timed(label, seconds, lambda: Executor(progress=False).correlate(a, b, corpus, pairs,
                                                                                 settings=settings), count)
    for workers in (1, 2):
        executor = RayExecutor([ModelSpec(model="default"), ModelSpec(model=other)],
                               expected_sha256=[a.weights_sha256, b.weights_sha256], workers=workers,
                               shard_size=args.shard_size, progress=False)
        try:
            state = timed(f"ray ({workers} worker{'s' if workers > 1 else ''})", seconds,
                          lambda: executor.correlate(a, b, corpus, pairs, settings=settings))
        finally:
            executor.close()
    r_local, r_ray = local.correlation(3, 3), state.correlation(3, 3)
    size = CorrelationState.nbytes(pairs, a.neurons_per_layer, b.neurons_per_layer)
    print(f"compare: {len(corpus)} texts, {state.n} tokens, default model vs {Path(other).name}, "
          f"shards of {args.shard_size} texts (rounded up to whole chunks)")
    report(seconds, threads)
    print(f"largest |r(ray) - r(local)| on layer 3: {abs(r_ray - r_local).max():.2e}")
    print(f"state per shard: {size / 1e6:.0f} MB, whatever the shard size (6 blocks of 1536 x 1536 plus 12 Gram "
          f"matrices, float64)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--job", choices=("run", "compare", "both"), default="both")
    parser.add_argument("--texts", type=int, default=10_000, help="run: texts harvested (default 10,000)")
    parser.add_argument("--tokens", type=int, default=1_000_000, help="compare: corpus tokens (default 1M)")
    parser.add_argument("--shard-size", type=int, help="texts per shard (default 512 for run, 8,192 for compare)")
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.job in ("run", "both"):
        bench_run(argparse.Namespace(**{**vars(args), "shard_size": args.shard_size or 512}))
    if args.job in ("compare", "both"):
        bench_compare(argparse.Namespace(**{**vars(args), "shard_size": args.shard_size or 8192}))


if __name__ == "__main__":
    main()
