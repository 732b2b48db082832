"""The general reference corpus: everyday text without the audited concepts, one text per line.

Ablation measures collateral cost on it, and the evidence stage looks for unrelated firing in it.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import AuditInputError
from ..inputs import read_input_text

REFERENCE_FILE = Path(__file__).resolve().parent.parent / "data" / "reference.txt"
LANGUAGE_REFERENCE_DIR = REFERENCE_FILE.parent / "multilingual"  # {code}.txt: parallel everyday text per language
LANGUAGE_REFERENCE_SOURCE = "bundled per-language reference text (audit/data/multilingual, written for neuron-audit, CC0)"


def load_reference(path: str | Path | None = None, *, what: str = "reference corpus") -> list[str]:
    """The general reference corpus: one text per line (the bundled everyday sentences by default). ``what``
    names the file in messages (``compare --corpus`` reads its corpus the same way)."""
    path = Path(path) if path else REFERENCE_FILE
    lines = [line.strip() for line in read_input_text(path, what).splitlines()]
    lines = [line for line in lines if line]
    if len(lines) < 10:
        raise AuditInputError(f"--reference: {path}: needs at least 10 non-empty lines, got {len(lines)}")
    return lines


def language_reference(code: str) -> list[str] | None:
    """The bundled reference text of one language (``fr``, ``pt-BR`` → ``pt``), one text per line, for its
    perplexity; None when none is bundled. The files are translations of one another, line by line."""
    base = code.strip().lower().replace("_", "-").split("-")[0]
    path = LANGUAGE_REFERENCE_DIR / f"{base}.txt"
    if not base.isalpha() or not path.is_file():
        return None
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
