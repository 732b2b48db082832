"""The one gate every path the tool reads passes through: probe sets, corpora, the reference corpus, import
sources, policies, results / comparison / baseline files, word vectors.

Every open is non-blocking and checked with ``fstat`` before a byte is read, so a FIFO, a device or a socket is
refused at once (a hang is impossible whatever the verb); a folder given for a file (or a file for a folder) is
named; whole-file reads are capped in size; a UTF-8 byte-order mark is accepted (spreadsheet programs write one)
and an encoding error names its exact line. Every problem is an :class:`AuditInputError` naming the path.

Low level on purpose (it imports only :mod:`audit.errors`), so every room may call it.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import stat
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import AuditInputError

MAX_INPUT_BYTES = 256 << 20  # probe sets, policies, import sources, results.json: far below this in practice
MAX_LINE_BYTES = 16 << 20  # one line of a streamed corpus
BOM = codecs.BOM_UTF8


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


@contextlib.contextmanager
def open_input(path: str | Path, what: str, *, limit: int | None = MAX_INPUT_BYTES) -> Iterator[BinaryIO]:
    """A user-named regular file, opened for binary reading without ever blocking (O_NONBLOCK, then fstat).

    ``what`` names the expected input in messages ("probe-set file"); ``limit`` caps its size in bytes
    (None: no cap, for streamed corpora)."""
    path = Path(path)
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise AuditInputError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise AuditInputError(f"{path}: is a folder; give a {what}") from None
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise AuditInputError(f"{path}: is a folder; give a {what}")
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            raise AuditInputError(f"{path}: not a regular file ({kind}); give a {what}")
        if limit is not None and info.st_size > limit:
            raise AuditInputError(f"{path}: {what} is larger than {limit >> 20} MiB")
        flags = fcntl.fcntl(descriptor, fcntl.F_GETFL)
        fcntl.fcntl(descriptor, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)  # a regular file: ordinary reads from here
        handle = os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise
    with handle:
        try:
            yield handle
        except OSError as exc:
            raise AuditInputError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None


def check_input_file(path: str | Path, what: str, *, limit: int | None = None) -> Path:
    """Fail now unless ``path`` is a readable regular file (for inputs a library opens itself, by name)."""
    with open_input(path, what, limit=limit):
        return Path(path)


def check_input_folder(path: str | Path, what: str) -> Path:
    """Fail now unless ``path`` is a readable folder (import sources that are folders)."""
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AuditInputError(f"{path}: no such folder; give {what}") from None
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot read ({exc.strerror or exc}); give {what}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise AuditInputError(f"{path}: not a folder ({'a file' if stat.S_ISREG(info.st_mode) else _kind(info.st_mode)})"
                              f"; give {what}")
    if not os.access(path, os.R_OK | os.X_OK):
        raise AuditInputError(f"{path}: cannot read the folder; give {what}")
    return path


def read_input_bytes(path: str | Path, what: str, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A user-named file's bytes (at most ``limit``: a file that grows while read is still capped)."""
    with open_input(path, what, limit=limit) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise AuditInputError(f"{path}: {what} is larger than {limit >> 20} MiB")
    return data


def decode_input(data: bytes, path: str | Path, what: str) -> str:
    """UTF-8 text of a whole file (a leading byte-order mark dropped, universal newlines); an encoding error
    names its exact line."""
    body = data[len(BOM):] if data.startswith(BOM) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise AuditInputError(f"{path}: {what} is not UTF-8 text (line {line}: {exc.reason})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_input_text(path: str | Path, what: str, *, limit: int = MAX_INPUT_BYTES) -> str:
    """A user-named file's UTF-8 text, through the gate: regular file, capped size, BOM accepted, exact line
    of a bad byte."""
    return decode_input(read_input_bytes(path, what, limit=limit), path, what)


def iter_input_lines(path: str | Path, what: str, *, line_limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """(line number, text without its line ending) for every line of a file of any size, streamed; the gate's
    checks apply, a line longer than ``line_limit`` bytes is an error, and a bad byte names its own line."""
    with open_input(path, what, limit=None) as handle:
        number = 0
        while True:
            raw = handle.readline(line_limit + 1)
            if not raw:
                return
            number += 1
            if len(raw) > line_limit and not raw.endswith(b"\n"):
                raise AuditInputError(f"{path}: line {number} of the {what} is longer than {line_limit >> 20} MiB")
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise AuditInputError(f"{path}: {what}: line {number} is not UTF-8 ({exc.reason})") from None
            yield number, text.rstrip("\r\n")
