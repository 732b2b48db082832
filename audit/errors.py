"""Errors the user can fix: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations


class AuditInputError(ValueError):
    """Bad input (a file, a field, an option); the message names it and says what was expected."""


class AuditWarning(UserWarning):
    """Something the user should know that does not stop the run (the CLI prints it as one line)."""


def expected(what: str, expectation: str, got: object) -> AuditInputError:
    """An error in the scikit-learn style: what, what was expected, what came."""
    return AuditInputError(f"{what} must be {expectation}. Got {got!r} instead.")
