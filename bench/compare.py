"""Benchmark the checkpoint comparison's correlation step on the default model pair.

Prints (1) the time to stream a corpus through both models while accumulating all-pairs correlation (with
the rotation-baseline sums) over the same batches as two bare forward passes (target: accumulation adds
≤ 50 %), once with float32 products and once with bfloat16 products (compare's default), and (2) peak memory at 1× and 3× corpus in fresh processes (target: flat;
the state is bounded by neurons_A × neurons_B). Model B is the sre-embedding-model fine-tune when installed,
else a second copy of the default. Corpus: the bundled reference sentences, three times over by default (the
ratio is a throughput; one pass over a short corpus adds per-run costs such as first-touch page faults of
the buffers, about 0.3 s here: ``--scale 1`` shows them).
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


def load_pair():
    from audit.model.loading import load_model

    a = load_model("default", device="cpu")
    try:
        import sre_embedding_model

        b = load_model(str(Path(sre_embedding_model.__file__).parent / "model_weights"), device="cpu")
    except ImportError:
        b = load_model("default", device="cpu")
    return a, b


def time_ratio(batch_size: int, repeats: int, limit: int, stride: int, scale: int) -> dict[str, float]:
    import torch

    from audit.analysis.correlation import CorrelationState, layer_pairs
    from audit.model.correlate import stream_correlation
    from audit.model.harvest import tokenize

    a, b = load_pair()
    texts = corpus(scale, limit)
    order = np.argsort([len(text) for text in texts], kind="stable")  # the batches the stream forms
    batches = [[texts[i] for i in order[s:s + batch_size]] for s in range(0, len(texts), batch_size)]
    pairs = layer_pairs(a.n_layers, b.n_layers, "same")

    def bare() -> None:
        with torch.inference_mode():
            for batch in batches:
                for model in (a, b):
                    encoded = tokenize(model, batch, 128)
                    encoded.pop("special_tokens_mask")
                    model.module.base_model(**encoded)

    def compare(precision: str) -> None:
        state = CorrelationState(pairs, a.neurons_per_layer, b.neurons_per_layer, precision=precision)
        stream_correlation(a, b, texts, state, align="tokens", batch_size=batch_size, stride=stride, progress=False)

    bare()  # warm-up
    runs = {"bare": bare, "float32": lambda: compare("float32"), "bfloat16": lambda: compare("bfloat16")}
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):  # interleave so drift in machine load hits all alike
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in timings.items()}
    tokens = sum(int(tokenize(a, batch, 128)["attention_mask"].sum()) for batch in batches)
    return {"texts": len(texts), "tokens": tokens, **{f"{k}_s": v for k, v in best.items()},
            **{f"ratio_{k}": best[k] / best["bare"] for k in ("float32", "bfloat16")},
            "tokens_per_s_bare": tokens / best["bare"], "tokens_per_s_bfloat16": tokens / best["bfloat16"]}


def peak_memory(scale: int, limit: int, stride: int) -> dict[str, float]:
    """Run in a fresh process: peak RSS after loading both models, and after streaming the corpus."""
    from audit.analysis.correlation import CorrelationState, layer_pairs
    from audit.model.correlate import stream_correlation

    a, b = load_pair()
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pairs = layer_pairs(a.n_layers, b.n_layers, "same")
    state = CorrelationState(pairs, a.neurons_per_layer, b.neurons_per_layer, precision="bfloat16")
    stream_correlation(a, b, corpus(scale, limit), state, align="tokens", stride=stride, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"scale": scale, "tokens": state.n, "peak_mb": peak, "after_load_mb": loaded,
            "state_mb": CorrelationState.nbytes(pairs, a.neurons_per_layer, b.neurons_per_layer) / 2 ** 20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--texts", type=int, default=2000, help="reference sentences per pass (default: all)")
    parser.add_argument("--scale", type=int, default=3, help="corpus repeats per timed pass (default 3: a "
                        "throughput, so per-run costs such as first-touch page faults of the buffers amortise)")
    parser.add_argument("--stride", type=int, default=8, help="baseline stride (default 8, as compare uses)")
    parser.add_argument("--memory-scale", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_scale:
        print(json.dumps(peak_memory(args.memory_scale, args.texts, args.stride)))
        return
    result = time_ratio(args.batch_size, args.repeats, args.texts, args.stride, args.scale)
    print(f"{result['texts']} texts, {result['tokens']} tokens; two bare forwards {result['bare_s']:.2f} s "
          f"({result['tokens_per_s_bare']:.0f} tokens/s)")
    print(f"  forwards + correlation (float32 products):  {result['float32_s']:.2f} s = {result['ratio_float32']:.2f}x")
    print(f"  forwards + correlation (bfloat16 products): {result['bfloat16_s']:.2f} s = {result['ratio_bfloat16']:.2f}x "
          f"({result['tokens_per_s_bfloat16']:.0f} tokens/s; target <= 1.50x; compare's default precision)")
    for scale in (1, 3):
        done = subprocess.run([sys.executable, __file__, "--memory-scale", str(scale), "--texts", str(args.texts),
                               "--stride", str(args.stride)], capture_output=True, text=True, check=True)
        memory = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"  memory at {scale}x corpus ({memory['tokens']} tokens): peak RSS {memory['peak_mb']:.0f} MB "
              f"(models loaded {memory['after_load_mb']:.0f} MB; correlation state {memory['state_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
