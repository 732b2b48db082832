"""CLI end-to-end on a tiny local model folder, and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from audit.cli import main
from tests.conftest import PLANTED_NEURON

FAST = ["--no-progress", "--top-k", "3", "--no-pdf", "--null-sets", "5"]


def run_cli(*args: str) -> tuple[int, str, str]:
    done = subprocess.run([sys.executable, "-m", "audit", *args], capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


def strip_timings(result: dict) -> dict:
    result = dict(result)
    result["run"] = {k: v for k, v in result["run"].items()
                     if k not in ("started_at", "duration_s", "timings_s", "command_line")}  # --out differs
    return result


def test_run_end_to_end_is_deterministic(planted_folder, concept_yaml, tmp_path):
    outs = [tmp_path / "first", tmp_path / "second"]
    for out in outs:
        code = main(["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--out", str(out),
                     "--seed", "7", *FAST])
        assert code == 0
        assert sorted(p.name for p in out.iterdir()) == ["report.html", "results.json"]
    first, second = (json.loads((out / "results.json").read_text()) for out in outs)
    assert strip_timings(first) == strip_timings(second)
    top = first["probesets"][0]["neurons"][0]
    assert (top["layer"], top["neuron"]) == (0, PLANTED_NEURON)
    assert first["run"]["seed"] == 7
    html = (outs[0] / "report.html").read_text()
    assert f"L0.N{PLANTED_NEURON}" in html and first["model"]["weights_sha256"] in html


def test_report_escapes_probe_text(planted_folder, tmp_path):
    document = {"name": "escape", "description": "d", "kind": "concept", "concept": "c",
                "positive": ["the cat <script>alert(1)</script> poison", "a dog venom"],
                "negative": ["the cat sees", "a bird sings"]}
    probes = tmp_path / "escape.yaml"
    probes.write_text(yaml.safe_dump(document))
    assert main(["run", "--model", str(planted_folder), "--probeset", str(probes), "--out",
                 str(tmp_path / "out"), *FAST]) == 0
    html = (tmp_path / "out" / "report.html").read_text()
    assert "<script" not in html and "&lt;" in html and "&gt;" in html and ">alert<" in html  # escaped, token by token


def test_python_dash_m_and_validate(concept_yaml):
    code, out, err = run_cli("validate", str(concept_yaml))
    assert code == 0 and "planted (concept, 40 positive / 40 negative)" in out


@pytest.mark.parametrize("args, needle", [
    (["run", "--top-k", "0"], "--top-k must be an int in [1, 1000]; got 0"),
    (["run", "--batch-size", "x"], "--batch-size must be an int in [1, 65536]; got 'x'"),
    (["run", "--pooling", "median"], "--pooling: invalid choice"),
    (["run", "--probeset", "nowhere.yaml"], "nowhere.yaml: no such probe-set file"),
    (["run", "--model", "/nonexistent/model"], "--model"),
    (["run", "--device", "tpu"], "--device: must be auto, cpu or cuda"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(args, needle, tmp_path, capsys):
    out = tmp_path / "out"
    code = main([*args, "--out", str(out)] if args[0] == "run" else args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_bad_probe_file_writes_nothing(planted_folder, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndescription: d\nkind: concept\nconcept: c\npositive: [a, b]\nnegative: [c]\n")
    code = main(["run", "--model", str(planted_folder), "--probeset", str(bad), "--out", str(tmp_path / "o")])
    assert code == 2 and "bad.yaml ('bad'): negative: needs at least 2" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_pickle_checkpoints_need_permission(planted_folder, tmp_path, capsys):
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled"
    shutil.copytree(planted_folder, folder)
    (folder / "model.safetensors").unlink()
    torch.save(load_file(planted_folder / "model.safetensors"), folder / "pytorch_model.bin")
    code = main(["run", "--model", str(folder), "--out", str(tmp_path / "o")])
    assert code == 2 and "only pickle checkpoints (pytorch_model.bin)" in capsys.readouterr().err
    from audit.model.loading import load_model

    assert load_model(str(folder), device="cpu", allow_pickle=True).n_layers == 2


def test_unexpected_errors_exit_1_with_one_line(monkeypatch, capsys, concept_yaml):
    import audit.probes.probeset

    def explode(paths):
        raise RuntimeError("boom")

    monkeypatch.setattr(audit.probes.probeset, "load_probesets", explode)
    assert main(["run", "--probeset", str(concept_yaml)]) == 1
    err = capsys.readouterr().err
    assert "unexpected error: RuntimeError: boom" in err and err.count("\n") == 1


def test_hub_ids_load_from_a_hugging_face_cache(planted_folder, tmp_path):
    """The hub path, offline: a cache laid out as huggingface_hub writes it (refs/main → snapshot)."""
    import shutil

    from audit.model.loading import load_model

    repo = tmp_path / "cache" / "models--tiny-org--planted"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(planted_folder, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    model = load_model("tiny-org/planted", device="cpu", cache_dir=str(tmp_path / "cache"))
    assert model.source == "huggingface:tiny-org/planted" and model.n_layers == 2
    local = load_model(str(planted_folder), device="cpu")
    assert model.weights_sha256 == local.weights_sha256 and "model.safetensors" in model.weights_files
    with pytest.raises(Exception, match="no model by that id"):
        load_model("tiny-org/absent", device="cpu", cache_dir=str(tmp_path / "cache"))


def test_harvest_cache_is_reused_and_keyed_by_settings(planted_folder, concept_yaml, tmp_path, monkeypatch):
    import numpy as np

    import audit.model.cache
    from audit.model.cache import cached_harvest
    from audit.model.loading import load_model

    model = load_model(str(planted_folder), device="cpu")
    texts = ["the poison cat", "a dog runs", "my venom book opens"]
    first = cached_harvest(model, texts, cache_dir=tmp_path, token_moments=True, outputs=True, progress=False)
    assert len(list(tmp_path.glob("harvest-*.npz"))) == 1

    def no_forward(*args, **kwargs):
        raise AssertionError("the cached harvest should have been used")

    monkeypatch.setattr(audit.model.cache, "harvest", no_forward)
    again = cached_harvest(model, texts, cache_dir=tmp_path, token_moments=True, outputs=True, progress=False)
    for field in ("max", "mean", "n_tokens", "truncated", "moments", "positive"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    np.testing.assert_array_equal(first.outputs["loglik"], again.outputs["loglik"])
    assert again.token_count == first.token_count
    with pytest.raises(AssertionError, match="cached harvest"):
        cached_harvest(model, texts, cache_dir=tmp_path, max_length=4, progress=False)  # other settings: new key

    monkeypatch.undo()
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        args = ["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--out", str(out),
                "--cache", str(tmp_path / "cache"), *FAST]
        assert main(args) == 0
    first, second = (json.loads((out / "results.json").read_text()) for out in outs)
    assert strip_timings(first) == strip_timings(second)


def test_model_folder_without_tokenizer_is_an_input_error(planted_folder, tmp_path, capsys):
    import shutil

    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(planted_folder / name, folder / name)
    assert main(["run", "--model", str(folder), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "has no usable tokenizer files" in capsys.readouterr().err


def test_cache_that_is_a_file_is_an_input_error(planted_folder, concept_yaml, tmp_path, capsys):
    (tmp_path / "cache").write_text("")
    args = ["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--cache", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "--cache:" in capsys.readouterr().err


def test_max_length_beyond_the_model_is_clamped_with_a_caveat(planted_folder, concept_yaml, tmp_path):
    out = tmp_path / "o"
    assert main(["run", "--model", str(planted_folder), "--probeset", str(concept_yaml), "--out", str(out),
                 "--max-length", "500", "--no-ablation", *FAST]) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["run"]["settings"]["max_length"] == 64
    assert any("position limit" in note for note in result["caveats"])
