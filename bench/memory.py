"""Peak memory of a whole concept-set audit as the number of texts grows.

Each size runs in a fresh process (peak RSS = ru_maxrss of that process) and prints one JSON line: texts,
neurons, the per-text aggregates' size (max + mean, float32), the peak RSS, and the peak per text beyond the
model-loaded baseline. ``--model tiny`` is a 2-layer GPT-2 with 256 MLP neurons built in-process (the
model of the memory report in issue 9); ``--model default`` is all-MiniLM-L6-v2 (9,216 neurons).

    .venv/bin/python bench/memory.py --model tiny --texts 1000 10000 50000
    .venv/bin/python bench/memory.py --model default --texts 1000 10000 100000 --memory-budget 1024
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(model_name: str, n_texts: int, memory_budget_mb: int, ablation: bool) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from audit.config import RunConfig
    from audit.model.loading import load_model
    from audit.probes.probeset import parse_probeset
    from audit.stages.audit import run_audit
    from tests import tiny

    if model_name == "tiny":
        tokenizer = tiny.build_tokenizer()
        folder = Path(tempfile.mkdtemp(prefix="bench-memory-"))
        tiny.save(tiny.build_gpt2(tokenizer), tokenizer, folder)
        model = load_model(str(folder), device="cpu")
    else:
        model = load_model(model_name, device="cpu")
    half = n_texts // 2
    document = {"name": "big", "description": "synthetic", "kind": "concept", "concept": "c",
                "positive": tiny.sentences(half, seed=1, insert=tiny.CONCEPT, length=(4, 9)),
                "negative": tiny.sentences(n_texts - half, seed=2, length=(5, 10))}
    probeset = parse_probeset(document)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    budget = {"memory_budget_mb": memory_budget_mb} if "memory_budget_mb" in RunConfig.__dataclass_fields__ else {}
    config = RunConfig(progress=False, ablation=ablation, null_sets=5, reference_texts=100, **budget)
    start = time.perf_counter()
    run_audit(model, [probeset], config)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    neurons = model.n_layers * model.neurons_per_layer
    return {"model": model_name, "texts": n_texts, "neurons": neurons,
            "aggregates_mb": round(2 * 4 * n_texts * neurons / 2**20, 1), "baseline_mb": round(baseline, 1),
            "peak_rss_mb": round(peak, 1), "peak_kb_per_text": round((peak - baseline) * 1024 / n_texts, 2),
            "seconds": round(time.perf_counter() - start, 1), "memory_budget_mb": memory_budget_mb}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--texts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--memory-budget", type=int, default=2048, help="MiB (the CLI's --memory-budget)")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.texts[0], args.memory_budget, not args.no_ablation)))
        return
    for n in args.texts:
        command = [sys.executable, __file__, "--child", "--model", args.model, "--texts", str(n),
                   "--memory-budget", str(args.memory_budget), *(["--no-ablation"] if args.no_ablation else [])]
        done = subprocess.run(command, capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        print(lines[-1] if done.returncode == 0 and lines else f"{n} texts: failed ({done.stderr.strip()[-300:]})",
              flush=True)


if __name__ == "__main__":
    main()
