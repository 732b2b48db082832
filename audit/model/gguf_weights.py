"""GGUF checkpoints: read the quantisation, dequantise strictly, and keep a verified float copy in a cache.

transformers dequantises a GGUF file to float tensors, but fills any tensor the file lacks with random
values (with a warning). An audit of random weights is worse than no audit, so :func:`read_gguf` refuses
missing, unexpected or mis-shaped tensors with a one-line error naming the tensor. Dequantising takes
~20 s for a 135M model on 2 cores; :func:`cached_copy` saves the result once as safetensors in a folder keyed
by the GGUF file's sha256 (with a manifest holding the copy's own hash, checked before every reuse), so
later loads take a few seconds.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

from ..errors import AuditInputError
from ..provenance import sha256_file

GGUF_SUFFIX = ".gguf"
CACHE_ENV = "NEURON_AUDIT_CACHE_DIR"  # overrides where dequantised copies are kept; "off" disables them
MANIFEST = "neuron-audit-manifest.json"
WEIGHTS = "model.safetensors"


def quantization(path: Path) -> dict[str, Any]:
    """The file's declared type (e.g. ``MOSTLY_Q4_1``) and how many tensors each storage type holds."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path), "r")
    except (ValueError, OSError) as exc:
        raise AuditInputError(f"--model: {path} is not a readable GGUF file ({exc})") from None
    field = reader.fields.get("general.file_type")
    file_type = None
    if field is not None and field.data:
        code = int(field.parts[field.data[0]][0])
        try:
            file_type = gguf.LlamaFileType(code).name
        except ValueError:
            file_type = str(code)
    types = Counter(tensor.tensor_type.name for tensor in reader.tensors)
    return {"format": "gguf", "file": path.name, "file_type": file_type,
            "tensor_types": dict(sorted(types.items())), "n_tensors": len(reader.tensors)}


def check_loading_info(info: Mapping[str, Any], where: str) -> None:
    """Refuse a load that left model tensors missing or mis-shaped, or that ignored checkpoint tensors."""
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise AuditInputError(f"--model: {where} lacks the tensor {missing[0]}{more} that the architecture needs; "
                              f"refusing to fill it with random values")
    mismatched = sorted(info.get("mismatched_keys") or (), key=str)
    if mismatched:
        first = mismatched[0]
        if isinstance(first, (tuple, list)) and len(first) == 3:
            detail = f"{first[0]} has shape {tuple(first[1])}, the architecture expects {tuple(first[2])}"
        else:
            detail = f"{first} has the wrong shape"
        raise AuditInputError(f"--model: {where}: tensor {detail}")
    unexpected = sorted(info.get("unexpected_keys") or ())
    if unexpected:
        raise AuditInputError(f"--model: {where} holds the tensor {unexpected[0]} that the architecture does not "
                              f"use; is it the model you meant?")


def read_gguf(path: Path) -> tuple[Any, Any]:
    """Dequantise ``path`` to a float32 causal LM and its tokenizer, strictly (see module docstring)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    where = str(path)
    # transformers always draws a progress bar here; keep it off logs and pipes (errors stay one line)
    quiet = contextlib.redirect_stderr(io.StringIO()) if not sys.stderr.isatty() else contextlib.nullcontext()
    try:
        with quiet:
            module, info = AutoModelForCausalLM.from_pretrained(
                str(path.parent), gguf_file=path.name, dtype=torch.float32, output_loading_info=True,
                ignore_mismatched_sizes=True)  # mismatches are reported by name below, not raised mid-load
            tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditInputError(f"--model: {where}: transformers cannot load this GGUF file ({first})") from None
    check_loading_info(info, where)
    return module, tokenizer


def cache_root(override: str | Path | None = None) -> Path | None:
    """Where dequantised copies live: ``override``, else $NEURON_AUDIT_CACHE_DIR, else the user cache folder.
    None when caching is off ("off")."""
    chosen = str(override) if override is not None else os.environ.get(CACHE_ENV)
    if chosen is not None:
        return None if chosen == "off" else Path(chosen).expanduser() / "gguf"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("neuron-audit")) / "gguf"


def cached_copy(path: Path, digest: str, root: Path | None) -> Path | None:
    """A verified dequantised copy of ``path`` (sha256 ``digest``) under ``root``; made on first use.

    None when caching is off or the cache cannot be written (the caller then dequantises in memory).
    A copy whose safetensors no longer match its manifest is made again.
    """
    if root is None:
        return None
    folder = root / digest
    if _verified(folder, digest):
        return folder
    module, tokenizer = read_gguf(path)
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:12]}-", dir=root))
    except OSError:
        return None
    try:
        _save_float_copy(module, staging)
        tokenizer.save_pretrained(staging)
        manifest = {"gguf_file": path.name, "gguf_sha256": digest, "weights_sha256": sha256_file(staging / WEIGHTS)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return None
    return folder


def _save_float_copy(module: Any, folder: Path) -> None:
    """config.json and model.safetensors of the dequantised model (transformers will not save_pretrained a
    model it loaded from GGUF, but the tensors are plain floats by now)."""
    from safetensors.torch import save_model

    config = module.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    save_model(module, str(folder / WEIGHTS), metadata={"format": "pt"})  # drops tied duplicates (lm_head)


def _verified(folder: Path, digest: str) -> bool:
    manifest_path, weights = folder / MANIFEST, folder / WEIGHTS
    if not (manifest_path.is_file() and weights.is_file()):
        return False
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("gguf_sha256") == digest and manifest.get("weights_sha256") == sha256_file(weights)
