"""Completed shard states on disk, so a killed run resumes where it stopped (``--resume``).

Layout under the output folder: ``.state/run.json`` (what the run was: weights hashes, texts, settings)
and one folder per job, keyed by the job's own hash, holding ``shard-<id>.npz`` (or ``.json``) files written
atomically.
A resumed run must match ``run.json`` exactly; the folder is removed once the run's outputs are written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ..errors import AuditInputError
from .tasks import SUFFIX, load_state, save_state

STATE_DIR = ".state"


class StateStore:
    """Shard states of one run, under ``<out>/.state`` (or ``<out>/<name>``)."""

    def __init__(self, out: Path, manifest: Mapping[str, Any], *, resume: bool, name: str = STATE_DIR) -> None:
        self.root = Path(out) / name
        self.manifest = json.loads(json.dumps(manifest))  # plain JSON, as it is stored
        self.discarded = 0
        self.fresh = not resume  # this run made the folder: an input error before any output removes it
        stored = self.root / "run.json"
        if resume:
            if not stored.is_file():
                raise AuditInputError(f"--resume: {self.root} holds no interrupted run to resume")
            try:
                previous = json.loads(stored.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise AuditInputError(f"--resume: {stored}: unreadable ({exc})") from None
            difference = _first_difference(previous, self.manifest)
            if difference:
                raise AuditInputError(f"--resume: {self.root} belongs to a run with other {difference}; "
                                      "rerun without --resume to start afresh")
        elif self.root.exists():
            self.discarded = sum(1 for _ in self.root.rglob("shard-*.*"))
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        _write_atomic(stored, json.dumps(self.manifest, indent=2, sort_keys=True))

    def job(self, key: str) -> JobState:
        return JobState(self.root / key)

    def remove(self) -> None:
        """Forget the run's states (after its outputs are written)."""
        shutil.rmtree(self.root, ignore_errors=True)


class JobState:
    """Completed shards of one job, keyed by shard id (``shard-<id>`` plus the kind's file suffix)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def done(self) -> set[int]:
        return {int(p.name.split(".")[0].split("-")[1]) for p in self.folder.glob("shard-*.*")
                if not p.name.endswith(".tmp")}

    def _path(self, shard_id: int, kind: str) -> Path:
        return self.folder / f"shard-{shard_id:06d}{SUFFIX[kind]}"

    def save(self, shard_id: int, kind: str, state: Any) -> None:
        save_state(kind, state, self._path(shard_id, kind))

    def load(self, shard_id: int, kind: str) -> Any:
        return load_state(kind, self._path(shard_id, kind))


def _first_difference(previous: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """What differs between two run manifests, in words (None when they match)."""
    labels = {"weights_sha256": "model weights", "probesets": "probe sets or texts", "corpus": "corpus",
              "reference": "reference corpus",
              "settings": "settings", "execution": "shard settings"}
    for key, label in labels.items():
        if previous.get(key) != current.get(key):
            if key == "settings" and isinstance(previous.get(key), dict):
                changed = sorted(k for k in set(previous[key]) | set(current.get(key, {}))
                                 if previous[key].get(k) != current.get(key, {}).get(k))
                return f"{label} ({', '.join(changed)})"
            return label
    return None


def _write_atomic(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(temporary, path)
