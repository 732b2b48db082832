"""Helpers shared by the sharding and Ray tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def without_run(path: Path) -> dict:
    result = json.loads(path.read_text())
    result.pop("run")
    return result


# Two processes' float32 forwards of the same batches have differed in their last bits (in CI, about one
# kill/resume run in three before every pass warmed up its kernels, and since then once: a layer's mean
# correlation 3.4e-9 relative apart), so results compared across processes are held to float32's precision.
# A lost or twice-merged shard moves these values by orders of magnitude more.
ACROSS_PROCESSES = 1e-6


def assert_close(mine, theirs, path: str = "", rel: float = 1e-9) -> None:
    """Equal JSON values, floats within ``rel`` of each other (correlation sums add in another order)."""
    if isinstance(theirs, dict):
        assert isinstance(mine, dict) and mine.keys() == theirs.keys(), path
        for key in theirs:
            assert_close(mine[key], theirs[key], f"{path}.{key}", rel)
    elif isinstance(theirs, list):
        assert isinstance(mine, list) and len(mine) == len(theirs), path
        for index, (a, b) in enumerate(zip(mine, theirs)):
            assert_close(a, b, f"{path}[{index}]", rel)
    elif isinstance(theirs, float) and not isinstance(mine, bool):
        assert mine == pytest.approx(theirs, rel=rel, abs=1e-12), f"{path}: {mine!r} vs {theirs!r}"
    else:
        assert mine == theirs, path


COMPARE_FAST = ["--no-progress", "--no-pdf", "--no-audit", "--batch-size", "4", "--baseline-stride", "2"]


def compare_args(pair) -> list[str]:
    a, b, corpus = pair
    return ["compare", "--model-a", str(a), "--model-b", str(b), "--corpus", str(corpus), *COMPARE_FAST]
