"""Errors the user can fix: the CLI prints them on one line and exits with code 2."""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_INPUT_BYTES = 256 << 20  # probe sets, policies, corpora, results.json: far below this in practice


class AuditInputError(ValueError):
    """Bad input (a file, a field, an option); the message names it and says what was expected."""


class AuditWarning(UserWarning):
    """Something the user should know that does not stop the run (the CLI prints it as one line)."""


def expected(what: str, expectation: str, got: object) -> AuditInputError:
    """An error in the scikit-learn style: what, what was expected, what came."""
    return AuditInputError(f"{what} must be {expectation}. Got {got!r} instead.")


def read_input_text(path: Path, what: str, *, limit: int = MAX_INPUT_BYTES) -> str:
    """A user-named file's UTF-8 text; a missing, unreadable, non-regular (FIFO, device) or oversized file is an
    input error naming it. At most ``limit`` bytes are ever read, so ``/dev/zero`` cannot exhaust memory."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
        with open(descriptor, "rb", buffering=0) as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise AuditInputError(f"{path}: not a regular file; give a {what}")
            data = handle.read(limit + 1) if info.st_size <= limit else b""
            if info.st_size > limit or len(data) > limit:
                raise AuditInputError(f"{path}: {what} is larger than {limit >> 20} MiB")
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as text mode
    except FileNotFoundError:
        raise AuditInputError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise AuditInputError(f"{path}: is a folder; give a {what}") from None
    except UnicodeDecodeError as exc:
        raise AuditInputError(f"{path}: {what} is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
