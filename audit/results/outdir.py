"""The output folder as one unit: checked before any work, locked for the run, replaced whole.

A run's files (results.json, report.html, report.pdf) are written into a staging folder beside ``--out`` and
swapped in by one atomic exchange of folders (Linux ``renameat2(RENAME_EXCHANGE)``; elsewhere two renames with
recovery at the next run), so a reader, a crash or a kill at any moment leaves either the old complete set or
the new complete set, never a mix. Nothing old is deleted before the new set is in place.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator, Mapping

from ..errors import AuditInputError

OUTPUT_FILES = ("results.json", "comparison.json", "report.html", "report.pdf")  # what a report folder may hold
STATE_DIR = ".state"  # shard states of an interrupted sharded run (audit.execution.state), kept until success
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def check_out(out: Path, option: str = "--out") -> None:
    """Fail early when ``out`` cannot receive a report: a file, a folder of other files, an unwritable parent."""
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise AuditInputError(f"{option}: {out} exists and is not a folder")
        foreign = sorted(p.name for p in out.iterdir() if p.name not in (*OUTPUT_FILES, STATE_DIR))
        if foreign:
            raise AuditInputError(f"{option}: {out} holds other files ({foreign[0]}); give a new folder or a "
                                  "former report folder, which is replaced as a whole")
    check_creatable(out.parent, option, for_path=out)


def check_creatable(folder: Path, option: str, *, for_path: Path | None = None) -> None:
    """``folder`` exists as a writable folder, or can be created: its nearest existing ancestor is one."""
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    where = for_path or folder
    if not ancestor.is_dir():
        raise AuditInputError(f"{option}: {where}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise AuditInputError(f"{option}: {where}: cannot write in {ancestor} (permission denied)")


def check_out_file(given: str, option: str, *, suffix: str = "") -> None:
    """Fail early when the path ``given`` cannot be written as one file: a folder, a non-regular file, a
    missing or unwritable parent folder."""
    path = Path(given)
    if path.is_dir() or given.endswith(("/", os.sep)):
        raise AuditInputError(f"{option}: {given} is a folder; give a file name{suffix}")
    if path.exists() and not path.is_file():
        raise AuditInputError(f"{option}: {path} exists and is not a regular file")
    parent = path.parent
    if not parent.is_dir():
        raise AuditInputError(f"{option}: {path}: the folder {parent} does not exist or is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AuditInputError(f"{option}: {path}: cannot write in {parent} (permission denied)")


class OutputLock:
    """An exclusive lock on one output folder (a lock file beside it), held from the start of a run to the
    end, so a second run writing the same ``--out`` fails at once instead of after its whole audit."""

    def __init__(self, out: Path, option: str = "--out") -> None:
        self.out, self.option = out, option
        self.path = out.parent / f".{out.name}.lock"
        self.handle: int | None = None

    def __enter__(self) -> "OutputLock":
        try:
            self.out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise AuditInputError(f"{self.option}: cannot create {self.out.parent} ({exc.strerror or exc})") from None
        while True:
            try:
                handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as exc:
                raise AuditInputError(f"{self.option}: cannot write in {self.out.parent} "
                                      f"({exc.strerror or exc})") from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(handle)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise AuditInputError(f"{self.option}: {self.out} is being written by another neuron-audit run "
                                          f"(lock {self.path}); wait for it or choose another folder") from None
                raise
            try:  # the holder before us may have removed the file: then lock the new one
                if os.fstat(handle).st_ino == os.stat(self.path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(handle)
        self.handle = handle
        recover_stale(self.out)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.handle is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self.handle)
            self.handle = None


def _stale(out: Path) -> Iterator[Path]:
    yield from sorted(out.parent.glob(f".{out.name}.new-*"))
    yield from sorted(out.parent.glob(f".{out.name}.old-*"))


def recover_stale(out: Path) -> None:
    """Remove staging folders that dead runs left beside ``out`` (call with the lock held, so no live run owns
    them); when a run died between two renames of the fallback swap, put the old set back first."""
    olds = sorted(out.parent.glob(f".{out.name}.old-*"))
    if not out.exists() and olds:
        os.rename(olds[-1], out)
    for stale in _stale(out):
        shutil.rmtree(stale, ignore_errors=True)


def replace_folder(out: Path, files: Mapping[str, str | bytes]) -> Path:
    """Make ``out`` hold exactly ``files``: write them into a staging folder beside it, then swap the folders."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; a report folder follows the user's umask
        for name, content in files.items():
            target = staging / name
            with open(target, "wb") as stream:
                stream.write(content if isinstance(content, bytes) else content.encode("utf-8"))
                stream.flush()
                os.fsync(stream.fileno())
        if not out.exists():
            os.rename(staging, out)
            return out
        _exchange(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)  # after the swap it holds the old set
    return out


def write_file(path: Path, content: str | bytes) -> Path:
    """Replace one file atomically (a temporary file beside it, then a rename). An existing file keeps its
    permission bits (a private 600 file stays private); a new one gets the umask's mode."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content if isinstance(content, bytes) else content.encode("utf-8"))
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def _exchange(new: Path, out: Path) -> None:
    """Swap two folders atomically where the kernel can; else move the old one aside first."""
    libc_name = ctypes.util.find_library("c")
    renameat2 = getattr(ctypes.CDLL(libc_name, use_errno=True), "renameat2", None) if libc_name else None
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(out), _RENAME_EXCHANGE) == 0:
            return
        if ctypes.get_errno() not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error), str(out))
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(aside)
    os.rename(out, aside)  # a crash here leaves no out: recover_stale puts this one back
    os.rename(new, out)
    os.rename(aside, new)  # the caller removes it


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
