"""User corpora for top contexts (``--corpus FILE``): plain text, one text per line, or JSONL.

Read lazily, line by line, so a corpus of any size streams through in bounded memory. JSONL lines are
objects with a string ``text`` field (or bare JSON strings); blank lines are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from ..errors import AuditInputError
from ..inputs import iter_input_lines

JSONL_SUFFIXES = (".jsonl", ".ndjson")


def iter_corpus(path: str | Path) -> Iterator[tuple[str, str]]:
    """Yield (key, text) per non-empty line; the key is ``{file name}:{line number}``, unique per corpus.
    Read through the input gate (a FIFO or a folder is refused at once; a bad byte names its line)."""
    path = Path(path)
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    try:
        for number, line in iter_input_lines(path, "corpus file"):
            line = line.strip()
            if not line:
                continue
            text = _jsonl_text(path, number, line) if jsonl else line
            if text.strip():
                yield f"{path.name}:{number}", text
    except AuditInputError as exc:
        message = str(exc)
        raise AuditInputError(message if message.startswith("--corpus") else f"--corpus: {message}") from None


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
