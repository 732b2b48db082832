"""results.json in and out: serialising the typed result, reading it back validated, writing outputs atomically."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import AuditInputError
from ..inputs import read_input_text
from .compare_contract import ComparisonResult
from .contract import AuditResult
from .outdir import replace_folder
from .record import Record
from .schema import comparison_schema, validate_results
from .semantics import check_semantics


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


def dumps(result: Record | Mapping[str, Any]) -> str:
    """results.json text: the one place results become JSON (stable key order, two-space indent, UTF-8 kept
    readable, numpy values as Python numbers, NaN and infinities as null)."""
    plain = result.to_dict() if isinstance(result, Record) else result
    return json.dumps(to_jsonable(plain), indent=2, ensure_ascii=False) + "\n"


def to_json(result: Record | Mapping[str, Any]) -> dict[str, Any]:
    """Exactly what results.json holds for ``result``, as a dict (what reports and policies read)."""
    return json.loads(dumps(result))


def parse_results(text: str, *, where: str) -> AuditResult:
    """A results.json text, validated against the published schema, as the typed result."""
    result = parse_any(text, where=where)
    if not isinstance(result, AuditResult):
        raise AuditInputError(f"{where}: a comparison.json, not a results.json (render it with neuron-audit render)")
    return result


def parse_any(text: str, *, where: str) -> AuditResult | ComparisonResult:
    """A results.json or comparison.json text (told apart by ``kind: comparison``), validated against its
    published schema, as the typed result."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AuditInputError(f"{where}: not a readable results.json ({exc})") from None
    except RecursionError:
        raise AuditInputError(f"{where}: not a readable results.json (nested too deeply)") from None
    if not isinstance(data, dict):
        raise AuditInputError(f"{where}: expected a JSON object at the top level, got {type(data).__name__}")
    comparison = data.get("kind") == "comparison"
    try:
        validate_results(data, where=where, schema=comparison_schema() if comparison else None)
    except RecursionError:
        raise AuditInputError(f"{where}: nested too deeply to be a results.json") from None
    check_semantics(data, where=where)  # what the report, search and policies rely on beyond the schema
    return ComparisonResult.from_dict(data) if comparison else AuditResult.from_dict(data)


def load_any(path: str | Path) -> AuditResult | ComparisonResult:
    """Read a results.json or comparison.json (render, --baseline): through the input gate, validated against
    its published schema, then semantically (:mod:`.semantics`); every problem is one line naming the path."""
    path = Path(path)
    return parse_any(read_input_text(path, "results file"), where=str(path))


def load_results(path: str | Path) -> AuditResult:
    """Read a results.json and validate it against the published schema (one-line error with the JSON path)."""
    path = Path(path)
    return parse_results(read_input_text(path, "results file"), where=str(path))


def write_outputs(out_dir: str | Path, files: Mapping[str, str | bytes]) -> Path:
    """Make ``out_dir`` hold exactly ``files``, replacing any former set as one unit (see :mod:`.outdir`):
    a reader, a crash or a kill sees the old complete set or the new one, never a mix."""
    return replace_folder(Path(out_dir), files)
