"""Helpers shared by the sharding and Ray tests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def without_run(path: Path) -> dict:
    result = json.loads(path.read_text())
    result.pop("run")
    return result


def one_thread(**extra: str) -> dict[str, str]:
    """The environment of a CLI run that a test compares with another process's run: one OpenMP/MKL thread.
    With two, a fresh process's first forward pass now and then gives an elementwise activation (the tiny
    GPT-2's tanh GELU) other last bits than every later pass on the same input: without the pass's warm-up the
    first batch differed in 33 of 80 processes here; with it in none of 30 here, yet in two CI runs since
    (a rotation baseline 5e-6 relative apart). With one thread, 50 of 50 fresh processes gave the same bits
    without any warm-up, so these tests hold resumed and Ray runs to the in-process tolerance."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", **extra}


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
