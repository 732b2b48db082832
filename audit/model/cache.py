"""On-disk cache of harvests, keyed by (model weights hash, texts, settings), so a re-run with other
analysis settings skips the forward passes. One ``.npz`` file per harvest, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import AuditWarning
from ..provenance import sha256_json
from .harvest import Activations, harvest
from .loading import Model
from .vocab import vocabulary_statistics

FORMAT = 1  # bump when the harvest's aggregates change meaning


def harvest_key(model: Model, texts: Sequence[str], settings: dict[str, Any]) -> str:
    """sha256 over the model's weights hash, the texts in order, and the settings that change the numbers
    (for causal LMs also the prefix token each text is read after: harvests from before that convention, or
    with another prefix, are never reused)."""
    texts_hash = hashlib.sha256("\x00".join(texts).encode("utf-8")).hexdigest()
    prefix = {"prefix_token": model.prefix_token} if model.kind == "causal-lm" else {}
    return sha256_json({"format": FORMAT, "weights": model.weights_sha256, "site": model.sites.path_template,
                        "device": model.device.type, "texts": texts_hash, "tokenizer": tokenizer_sha256(model),
                        **prefix, **settings})


def tokenizer_sha256(model: Model) -> str:
    """A hash of the tokenizer's full definition (fast tokenizers) or its vocabulary: other tokens, other numbers."""
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # padding/truncation state changes with every call: not part of the definition
        definition = {k: v for k, v in json.loads(backend.to_str()).items() if k not in ("padding", "truncation")}
        text = json.dumps(definition, sort_keys=True)
    else:
        text = repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(f"{type(tokenizer).__name__}\n{text}".encode("utf-8")).hexdigest()


Runner = Callable[[Sequence[str], dict[str, Any], str], Activations]


def cached_harvest(model: Model, texts: Sequence[str], *, cache_dir: str | Path | None, batch_size: int = 32,
                   max_length: int = 128, token_moments: bool = False, outputs: bool = False,
                   active_counts: bool = False, progress: bool = True, description: str = "harvest",
                   runner: Runner | None = None, memory_budget_mb: int | None = None) -> Activations:
    """:func:`harvest`, read from ``cache_dir`` when the same harvest was stored there before.

    ``runner(texts, settings, description)`` does the harvest instead of a plain in-process one (an
    executor that shards it, locally or on a cluster); what it returns is cached the same way.
    ``memory_budget_mb`` spills a plain harvest's aggregates to a memory-mapped file past the budget.
    """
    settings = {"batch_size": batch_size, "max_length": max_length, "token_moments": token_moments,
                "outputs": outputs, "active_counts": active_counts}
    if runner is None:
        def runner(texts: Sequence[str], settings: dict[str, Any], description: str) -> Activations:
            return harvest(model, texts, progress=progress, description=description,
                           memory_budget_mb=memory_budget_mb, **settings)
    if cache_dir is None or not model.weights_sha256:
        return runner(texts, settings, description)
    path = Path(cache_dir) / f"harvest-{harvest_key(model, texts, settings)}.npz"
    if path.is_file():
        try:
            cached = load(path)
            if cached.max.shape[0] != len(texts):
                raise ValueError(f"holds {cached.max.shape[0]} texts, expected {len(texts)}")
            return cached
        except Exception as exc:  # a damaged entry is a miss: recompute and rewrite it, never fail the run
            warnings.warn(f"--cache: {path} is damaged ({type(exc).__name__}: {str(exc)[:80]}); recomputing "
                          "and rewriting it", AuditWarning, stacklevel=2)
    acts = runner(texts, settings, description)
    save(acts, path)
    return acts


def save(acts: Activations, path: Path) -> None:
    """Write ``acts`` to ``path`` through a temporary file and a rename."""
    arrays: dict[str, np.ndarray] = {"max": acts.max, "mean": acts.mean, "n_tokens": acts.n_tokens,
                                     "truncated": acts.truncated, "token_count": np.array(acts.token_count),
                                     "max_length": np.array(acts.max_length)}
    if acts.moments is not None:
        arrays.update(moments=acts.moments, positive=acts.positive)
    if acts.active is not None:
        arrays["active"] = acts.active
    for key, values in (acts.outputs or {}).items():
        arrays[f"outputs.{key}"] = values
    _write_npz(arrays, path)


def _write_npz(arrays: dict[str, np.ndarray], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def load(path: Path) -> Activations:
    """Read a cached harvest."""
    with np.load(path) as data:
        outputs = {key.split(".", 1)[1]: data[key] for key in data.files if key.startswith("outputs.")}
        return Activations(max=data["max"], mean=data["mean"], n_tokens=data["n_tokens"],
                           truncated=data["truncated"], token_count=int(data["token_count"]),
                           max_length=int(data["max_length"]),
                           moments=data["moments"] if "moments" in data.files else None,
                           positive=data["positive"] if "positive" in data.files else None,
                           active=data["active"] if "active" in data.files else None,
                           outputs=outputs or None)


def cached_vocabulary_statistics(model: Model, *, cache_dir: str | Path | None) -> dict[str, np.ndarray] | None:
    """:func:`vocabulary_statistics` (a minute or more for a large vocabulary on CPU), kept in ``cache_dir``
    keyed by the weights hash."""
    if cache_dir is None or not model.weights_sha256 or model.kind != "causal-lm":
        return vocabulary_statistics(model)
    key = sha256_json({"format": FORMAT, "vocabulary_statistics": 1, "weights": model.weights_sha256,
                       "site": model.sites.path_template})
    path = Path(cache_dir) / f"vocab-{key}.npz"
    if path.is_file():
        with np.load(path) as data:
            return {name: data[name] for name in data.files}
    found = vocabulary_statistics(model)
    if found is not None:
        _write_npz(found, path)
    return found
