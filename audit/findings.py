"""The audit result (the results.json contract) and writing outputs atomically."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import AuditInputError, read_input_text

SCHEMA_VERSION = "1"
REQUIRED_KEYS = ("schema_version", "model", "run", "probesets", "caveats")


def to_jsonable(value: Any) -> Any:
    """numpy scalars/arrays to Python, NaN/inf to None, recursively."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def dumps(result: Mapping[str, Any]) -> str:
    """results.json text: stable key order, two-space indent, UTF-8 kept readable."""
    return json.dumps(to_jsonable(result), indent=2, ensure_ascii=False) + "\n"


def load_results(path: str | Path) -> dict[str, Any]:
    """Read a results.json, checking it carries the contract's top-level keys."""
    path = Path(path)
    try:
        result = json.loads(read_input_text(path, "results file"))
    except json.JSONDecodeError as exc:
        raise AuditInputError(f"{path}: not a readable results.json ({exc})") from None
    missing = [key for key in REQUIRED_KEYS if not isinstance(result, dict) or key not in result]
    if missing:
        raise AuditInputError(f"{path}: {missing[0]}: missing from results.json")
    if result["schema_version"] != SCHEMA_VERSION:
        raise AuditInputError(f"{path}: schema_version: expected {SCHEMA_VERSION!r}, got {result['schema_version']!r}")
    return result


def write_outputs(out_dir: str | Path, files: Mapping[str, str | bytes]) -> Path:
    """Write every file into a temporary folder beside ``out_dir``, then move them into place.

    A new ``out_dir`` appears whole (one rename); in an existing one each file is replaced by rename,
    so no reader ever sees a half-written file.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, content in files.items():
            target = staging / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        if not out_dir.exists():
            os.rename(staging, out_dir)
            return out_dir
        for name in files:
            os.replace(staging / name, out_dir / name)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out_dir
