"""Errors the user can fix: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations

from pathlib import Path


class AuditInputError(ValueError):
    """Bad input (a file, a field, an option); the message names it and says what was expected."""


def expected(what: str, expectation: str, got: object) -> AuditInputError:
    """An error in the scikit-learn style: what, what was expected, what came."""
    return AuditInputError(f"{what} must be {expectation}. Got {got!r} instead.")


def read_input_text(path: Path, what: str) -> str:
    """A user-named file's UTF-8 text; a missing or unreadable file is an input error naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AuditInputError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AuditInputError(f"{path}: cannot read {what} ({exc})") from None
