"""User corpora for top contexts (``--corpus FILE``): plain text, one text per line, or JSONL.

Read lazily, line by line, so a corpus of any size streams through in bounded memory. JSONL lines are
objects with a string ``text`` field (or bare JSON strings); blank lines are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ..errors import AuditInputError

JSONL_SUFFIXES = (".jsonl", ".ndjson")


def iter_corpus(path: str | Path) -> Iterator[tuple[str, str]]:
    """Yield (key, text) per non-empty line; the key is ``{file name}:{line number}``, unique per corpus."""
    path = Path(path)
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise AuditInputError(f"--corpus: {path}: no such file") from None
    except OSError as exc:
        raise AuditInputError(f"--corpus: {path}: cannot read ({exc})") from None
    with handle:
        number = 0
        try:
            for number, line in enumerate(handle, start=1):
                line = line.strip()
                if not line:
                    continue
                text = _jsonl_text(path, number, line) if jsonl else line
                if text.strip():
                    yield f"{path.name}:{number}", text
        except UnicodeDecodeError as exc:
            raise AuditInputError(f"--corpus: {path}: line {number + 1} is not UTF-8 ({exc.reason})") from None


def check_corpus(path: str | Path) -> None:
    """Fail early (before a model loads) on a missing file or a malformed first line."""
    for _ in zip(range(1), iter_corpus(path)):
        return
    raise AuditInputError(f"--corpus: {path}: holds no text")


def _jsonl_text(path: Path, number: int, line: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise AuditInputError(f"--corpus: {path}: line {number} is not JSON ({exc.msg})") from None
    if isinstance(record, str):
        return record
    if isinstance(record, dict) and isinstance(record.get("text"), str):
        return record["text"]
    raise AuditInputError(f"--corpus: {path}: line {number}: expected an object with a string 'text' field "
                          "or a JSON string")
