"""A table of bad inputs and faults, each run through the CLI: exit code 2, one stderr line naming the file,
field or option, no traceback, and the output folder exactly as it was (an old report set stays intact).

Most cases fail before any model loads, so the table stays fast; the model cases load a tiny GPT-2 folder
(damaged copies of it are built once per module).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from pathlib import Path

import pytest
import yaml

from audit.cli import main

GOOD = {"name": "good", "description": "d", "kind": "concept", "concept": "c",
        "positive": ["the poison cat", "a venom dog"], "negative": ["the cat sees", "a bird runs"]}
PAIRED = {"name": "pairs", "description": "d", "kind": "paired", "groups": ["a", "b"],
          "items": [{"a": "she runs", "b": "he runs"}, {"a": "her book", "b": "his book"}]}


def _yaml(document) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def _with(**changes) -> str:
    return _yaml({**GOOD, **changes})


def _without(key: str) -> str:
    return _yaml({k: v for k, v in GOOD.items() if k != key})


STEREO = {"id": "abc", "target": "chess player", "bias_type": "profession", "context": "The BLANK won.",
          "sentences": [{"id": "s1", "sentence": "The smart man won.", "gold_label": "stereotype"},
                        {"id": "s2", "sentence": "The dumb man won.", "gold_label": "anti-stereotype"},
                        {"id": "s3", "sentence": "The fish man won.", "gold_label": "unrelated"}]}

FILES = {  # name → text (str) or bytes; written once per module
    "good.yaml": _yaml(GOOD),
    "good2.yaml": _yaml({**GOOD, "name": "good-two"}),
    "same-name.yaml": _yaml(GOOD),
    "latin1.yaml": _yaml(GOOD).replace("description: d", "description: caf\u00e9").encode("latin-1"),
    "broken.yaml": "name: [unclosed\n",
    "list-key.yaml": "? [a, b]\n: 1\n" + _yaml(GOOD),
    "dup-key.yaml": _yaml(GOOD) + "name: again\n",
    "unknown-field.yaml": _with(colour="red"),
    "no-negative.yaml": _without("negative"),
    "bad-kind.yaml": _with(kind="conceptual"),
    "bad-name.yaml": _with(name="Bad Name"),
    "few.yaml": _with(negative=["only one"]),
    "dup-text.yaml": _with(negative=["the poison cat", "a bird runs"]),
    "number-text.yaml": _with(positive=["a text", 42]),
    "empty.yaml": "",
    "scalar.yaml": "just a sentence\n",
    "missing-group.yaml": _yaml({**PAIRED, "items": [{"a": "she runs"}, {"a": "her", "b": "his"}]}),
    "reserved-group.yaml": _yaml({**PAIRED, "groups": ["rest", "b"]}),
    "policy-nan.yaml": "checks:\n  - {probeset: good, metric: selective_neurons, max: .nan}\n",
    "policy-name-list.yaml": "checks:\n  - {probeset: good, metric: selective_neurons, max: 3, name: [a, b]}\n",
    "policy-metric.yaml": "checks:\n  - {probeset: good, metric: neurons_total, max: 3}\n",
    "policy-other-set.yaml": "checks:\n  - {probeset: absent, metric: selective_neurons, max: 3}\n",
    "policy-two-bounds.yaml": "checks:\n  - {probeset: good, metric: selective_neurons, max: 3, min: 1}\n",
    "policy-broken.yaml": "checks: [\n",
    "reference-short.txt": "one\ntwo\nthree\n",
    "reference-ok.txt": "".join(f"an ordinary sentence number {i}\n" for i in range(12)),
    "a-file": "not a folder\n",
    "crows-no-column.csv": "sent_more,sent_less\na,b\n",
    "crows-bad-direction.csv": "sent_more,sent_less,stereo_antistereo,bias_type\na b,c d,sideways,race\n",
    "winobias-latin1/pro_stereotyped_type1.txt.dev": "1 The [nurse] met [her] friend caf\u00e9\n".encode("latin-1"),
    "winobias-latin1/anti_stereotyped_type1.txt.dev": b"1 The [nurse] met [his] friend\n",
    "winobias-no-twin/pro_stereotyped_type1.txt.dev": "1 The [nurse] met [her] friend\n",
    "results-list.json": "[1, 2, 3]\n",
    "results-not-json.json": "{ not json\n",
    "results-deep.json": "[" * 100_000 + "]" * 100_000,
    # issue 23: corpora, reference, word vectors, policies, importers through the one input gate
    "corpus-empty.txt": "\n\n",
    "corpus-bad.jsonl": "{not json\n",
    "corpus-latin1.txt": "caf\u00e9 au lait\n".encode("latin-1"),
    "corpus-1501.txt": b"a good line of text\n" * 1500 + b"a bad \xff byte\n",
    "reference-latin1.txt": b"one good line\ntwo good lines\nthree caf\xe9\n" + b"more text\n" * 10,
    "vectors.txt": "a 1 2 3\n",
    "vectors-bad.vec": "3 3\na 1 2 3\nb 1 2\n",
    "policy-empty-checks.yaml": "checks: []\n",
    "policy-latin1.yaml": "checks:\n  - {probeset: good, metric: selective_neurons, max: 3, name: caf\u00e9}\n".encode(
        "latin-1"),
    "probe-bad-line5.yaml": _yaml(GOOD).encode("utf-8").replace(b"positive:", b"positive: #\xff", 1),
    "stereo-inter-number.json": json.dumps({"data": {"intrasentence": [STEREO], "intersentence": 3}}),
    "stereo-id-list.json": json.dumps({"data": {"intrasentence": [{**STEREO, "id": ["a", "b"]}]}}),
    "stereo-not-json.json": "{ not json",
    "stereo-no-intra.json": json.dumps({"version": "1.0", "data": {}}),
    "stereo-sentence-number.json": json.dumps({"data": {"intrasentence": [
        {**STEREO, "sentences": [{**STEREO["sentences"][0], "sentence": 7}, *STEREO["sentences"][1:]]}]}}),
    "stereo-latin1.json": ('{"data":\n {"intrasentence": [], "x": "caf\u00e9"}}').encode("latin-1"),
    "stereo-bad-label.json": json.dumps({"data": {"intrasentence": [
        {**STEREO, "sentences": [{**STEREO["sentences"][0], "gold_label": ["x"]}, *STEREO["sentences"][1:]]}]}}),
    "winobias-occ/pro_stereotyped_type1.txt.dev": "1 The [nurse] met [her] friend\n",
    "winobias-occ/anti_stereotyped_type1.txt.dev": "1 The [nurse] met [his] friend\n",
    "winobias-occ/female_occupations.txt": "nurse\ncaf\u00e9\n".encode("latin-1"),
    "winobias-bad-line/pro_stereotyped_type1.txt.dev": "The nurse met her friend\n",
    "winobias-bad-line/anti_stereotyped_type1.txt.dev": "1 The [nurse] met [his] friend\n",
    "winobias-uneven/pro_stereotyped_type1.txt.dev": "1 The [nurse] met [her] friend\n2 [She] ran\n",
    "winobias-uneven/anti_stereotyped_type1.txt.dev": "1 The [nurse] met [his] friend\n",
    "crows-latin1.csv": "sent_more,sent_less,stereo_antistereo,bias_type\na b,c d,stereo,race\ne f,g caf\u00e9,stereo,race\n"
                        .encode("latin-1"),
    "crows-empty-cell.csv": "sent_more,sent_less,stereo_antistereo,bias_type\na b,,stereo,race\n",
    "crows-no-rows.csv": "sent_more,sent_less,stereo_antistereo,bias_type\n",
    "compare-policy.yaml": "checks:\n  - {probeset: planted, metric: new_selective_neurons, max: 3}\n",
}


@pytest.fixture(scope="module")
def world(tmp_path_factory, planted_folder, small_report, small_outputs) -> dict[str, str]:
    """Every path a case names: the files above, damaged model folders, a valid results.json and its variants."""
    from safetensors.torch import load_file, save_file

    root = tmp_path_factory.mktemp("bad-inputs")
    paths: dict[str, str] = {"model": str(planted_folder), "root": str(root)}
    for name, content in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        paths[name] = str(path)
    os.mkfifo(root / "fifo")
    paths["fifo"] = str(root / "fifo")

    tensors = load_file(planted_folder / "model.safetensors")
    raw = (planted_folder / "model.safetensors").read_bytes()

    def model_copy(name: str, weights: bytes | dict | None = None) -> Path:
        folder = root / name
        shutil.copytree(planted_folder, folder, ignore=shutil.ignore_patterns("model.safetensors"))
        if isinstance(weights, bytes):
            (folder / "model.safetensors").write_bytes(weights)
        elif isinstance(weights, dict):
            save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
        paths[name] = str(folder)
        return folder

    model_copy("m-truncated", raw[: len(raw) // 2])
    model_copy("m-random", os.urandom(4096))
    model_copy("m-huge-header", struct.pack("<Q", 1 << 62) + b"{}")
    model_copy("m-missing", {k: v for k, v in tensors.items() if k != "transformer.h.1.mlp.c_fc.weight"})
    extra = tensors["transformer.h.1.mlp.c_fc.weight"].clone()
    model_copy("m-unexpected", {**tensors, "transformer.h.9.mlp.c_fc.weight": extra})
    model_copy("m-shape", {**tensors, "transformer.h.0.mlp.c_fc.bias": tensors["transformer.h.0.mlp.c_fc.bias"][:100]})
    other = {k: v[..., :32].contiguous() if v.ndim and v.shape[-1] == 64 else v for k, v in tensors.items()}
    model_copy("m-other-model", other)
    (model_copy("m-dangling") / "model.safetensors").symlink_to(root / "nowhere.safetensors")
    (model_copy("m-weights-folder") / "model.safetensors").mkdir()
    adapter = model_copy("m-adapter")
    (adapter / "adapter_model.safetensors").write_bytes(raw)
    (adapter / "adapter_config.json").write_text("{}")
    (model_copy("m-adapter-only") / "config.json").unlink()
    (Path(paths["m-adapter-only"]) / "adapter_config.json").write_text("{}")
    model_copy("m-pickle")
    (root / "m-pickle" / "pytorch_model.bin").write_bytes(b"not really a pickle")
    model_copy("m-no-tokenizer", raw)
    for name in os.listdir(root / "m-no-tokenizer"):
        if name.startswith(("tokenizer", "special_tokens", "vocab", "merges")):
            os.unlink(root / "m-no-tokenizer" / name)
    (model_copy("m-bad-config", raw) / "config.json").write_text("{ not json")
    config = json.loads((planted_folder / "config.json").read_text())
    (model_copy("m-unsupported", raw) / "config.json").write_text(json.dumps({**config, "model_type": "t5"}))
    (root / "m-file").write_text("weights?")
    paths["m-file"] = str(root / "m-file")
    (root / "m-empty").mkdir()
    paths["m-empty"] = str(root / "m-empty")

    results = json.loads((small_report / "results.json").read_text())
    paths["results"] = str(small_report / "results.json")
    variants = {
        "results-missing-key": lambda r: r["probesets"][0]["summary"].pop("n_significant"),
        "results-string-number": lambda r: r["probesets"][0]["neurons"][0].__setitem__("auroc", "high"),
        "results-no-model": lambda r: r.pop("model"),
        "results-version": lambda r: r.__setitem__("schema_version", "9"),
    }
    for name, edit in variants.items():
        broken = json.loads(json.dumps(results))
        edit(broken)
        (root / f"{name}.json").write_text(json.dumps(broken))
        paths[name] = str(root / f"{name}.json")
    _variants(root, paths, small_outputs)
    (root / "out-parent-file").write_text("a file")
    paths["out-parent-file"] = str(root / "out-parent-file")
    return paths


def _explained(document: dict) -> dict:
    """The first reported neuron entry with an explanation."""
    return next(n for section in document["probesets"] for n in section.get("neurons", []) if "explanation" in n)


def _exemplified(document: dict) -> dict:
    return next(n for section in document["probesets"] for n in section.get("neurons", []) if n.get("exemplars"))


def _variants(root: Path, paths: dict[str, str], outputs: dict) -> None:
    """Schema-valid results.json / comparison.json files that break what render and search rely on (issue 23)."""
    cmp_variants = {
        "cmp-ok": lambda c: None,
        "cmp-empty-layers": lambda c: c.__setitem__("layers_a", []),
        "cmp-empty-edges": lambda c: c["histogram"].update(edges=[], best=[], baseline=[], diagonal=[]),
        "cmp-counts-shape": lambda c: c["histogram"].__setitem__("best", [1, 2, 3]),
        "cmp-null-edge": lambda c: c["histogram"]["edges"].__setitem__(0, None),
        "cmp-unknown-set": lambda c: c["probesets"][0].__setitem__("name", "absent"),
        "cmp-no-audits": lambda c: c.__setitem__("audits", None),
        "cmp-twice": lambda c: c["probesets"].append(c["probesets"][0]),
        "cmp-zero-neurons": lambda c: c["layers_a"][0].__setitem__("n_neurons", 0),
        "cmp-null-delta": lambda c: next(d for d in c["probesets"] if "output" in d)["output"].__setitem__(
            "delta", None),
        "cmp-audit-span": lambda c: _exemplified(c["audits"]["b"])["exemplars"][0].__setitem__(
            "token_spans", [[0, 10 ** 6]] * len(_exemplified(c["audits"]["b"])["exemplars"][0]["token_spans"])),
    }
    res_variants = {
        "res-empty-pattern": lambda r: _explained(r)["explanation"].__setitem__(
            "graph", [{"tokens": [], "activation": 1.0, "support": 1}]),
        "res-null-token": lambda r: _explained(r)["explanation"]["top_tokens"][0].__setitem__("token", None),
        "res-null-activation": lambda r: _explained(r)["explanation"].__setitem__(
            "graph", [{"tokens": ["poison"], "activation": None}]),
        "res-duplicate-set": lambda r: r["probesets"].append(r["probesets"][0]),
        "res-span-outside": lambda r: _exemplified(r)["exemplars"][0]["token_spans"].__setitem__(0, [5, 10 ** 6]),
        "res-spans-count": lambda r: _exemplified(r)["exemplars"][0]["token_spans"].pop(),
        "res-per-layer": lambda r: r["probesets"][0]["summary"]["per_layer_significant_positive"].append(0),
        "res-ci": lambda r: r["probesets"][0]["neurons"][0].__setitem__("auroc_ci95", [0.5]),
        "res-null-sets": lambda r: r["run"]["settings"].__setitem__("null_sets", None),
        "res-no-fidelity-texts": lambda r: _explained(r)["explanation"].update(
            fidelity={"graph": {"n_firing": 1, "f1": 0.5, "precision": 0.5, "recall": 0.5},
                      "token_lookup": {"f1": 0.1}, "ngram": {"f1": 0.1}}) or
        _explained(r)["explanation"].pop("fidelity_texts", None),
    }
    for variants, source in ((cmp_variants, outputs["comparison"]), (res_variants, outputs["results"])):
        for name, edit in variants.items():
            document = json.loads(json.dumps(source))
            edit(document)
            (root / f"{name}.json").write_text(json.dumps(document))
            paths[name] = str(root / f"{name}.json")


def run(*extra: str, model: str = "{model}", probes: tuple[str, ...] = ("{good.yaml}",),
        out: str = "{out}") -> list[str]:
    return ["run", "--model", model, "--probeset", *probes, "--out", out, "--no-pdf", "--no-progress", *extra]


def probe(name: str) -> list[str]:
    return run(probes=(f"{{{name}}}",))


def model(name: str) -> list[str]:
    return run(model=f"{{{name}}}")


def render(results: str, *extra: str) -> list[str]:
    return ["render", f"{{{results}}}", "--out", "{out}", "--no-pdf", *extra]


def compare(*extra: str, model_a: str = "{model}", model_b: str = "{model}", probes: tuple[str, ...] = ("{good.yaml}",),
            out: str = "{out}") -> list[str]:
    return ["compare", "--model-a", model_a, "--model-b", model_b, "--probeset", *probes, "--out", out, "--no-pdf",
            "--no-progress", *extra]


def explain(*extra: str, neuron: str = "L0.N17") -> list[str]:
    return ["explain", "--model", "{model}", "--neuron", neuron, "--no-progress", *extra]


CASES = [  # (id, argv, text the one stderr line must hold)
    # options: ranges name the option the user typed
    ("top-k-0", run("--top-k", "0"), "--top-k must be an int in [1, 1000]; got 0"),
    ("top-k-huge", run("--top-k", "1001"), "--top-k must be an int in [1, 1000]; got 1001"),
    ("batch-size-word", run("--batch-size", "x"), "--batch-size must be an int in [1, 65536]; got 'x'"),
    ("max-length-1", run("--max-length", "1"), "--max-length must be an int in [2, 1048576]; got 1"),
    ("seed-negative", run("--seed", "-1"), "--seed must be an int in [0, 4294967295]; got -1"),
    ("null-sets-1", run("--null-sets", "1"), "--null-sets must be an int in [2, 10000]; got 1"),
    ("ablation-texts-3", run("--ablation-texts", "3"), "--ablation-texts must be an int in [4, 1000000]; got 3"),
    ("dose-max-0", run("--dose-max", "0"), "--dose-max must be an int in [1, 1000000]; got 0"),
    ("ablate-k-0", run("--ablate-k", "0"), "--ablate-k must be an int in [1, 10000]; got 0"),
    ("ablate-per-layer-0", run("--ablate-per-layer", "0"), "--ablate-per-layer must be an int in [1, 10000]"),
    ("pooling", run("--pooling", "median"), "--pooling: invalid choice"),
    ("ablation-mode", run("--ablation-mode", "erase"), "--ablation-mode: invalid choice"),
    ("device", run("--device", "tpu"), "--device: must be auto, cpu or cuda"),
    ("unknown-option", run("--frobnicate"), "unrecognized arguments: --frobnicate"),
    ("unknown-command", ["frobnicate"], "invalid choice: 'frobnicate'"),
    ("fail-on-policy-without-checks", run("--fail-on-policy", "--policy", "none"), "--fail-on-policy: needs a policy"),
    ("render-fail-on-policy-without-checks", render("results", "--fail-on-policy", "--policy", "None"),
     "--fail-on-policy: needs a policy"),
    ("name-a-on-audit-results", render("results", "--name-a", "x"), "--name-a/--name-b: only for a comparison.json"),
    # probe sets: every file of a list option is read, repeated or not
    ("probeset-missing", run(probes=("{root}/absent.yaml",)), "absent.yaml: no such probe-set file"),
    ("probeset-repeated-first-missing", run(probes=("{root}/absent.yaml",)) + ["--probeset", "{good.yaml}"],
     "absent.yaml: no such probe-set file"),
    ("probeset-list-second-missing", run(probes=("{good.yaml}", "{root}/absent2.yaml")),
     "absent2.yaml: no such probe-set file"),
    ("probeset-repeated-duplicate-name", run(probes=("{good.yaml}",)) + ["--probeset", "{same-name.yaml}"],
     "duplicate probe-set name 'good'"),
    ("probeset-folder", probe("root"), "is a folder; give a probe-set file"),
    ("probeset-fifo", probe("fifo"), "fifo: not a regular file"),
    ("probeset-dev-zero", run(probes=("/dev/zero",)), "/dev/zero: not a regular file"),
    ("probeset-not-utf8", probe("latin1.yaml"), "latin1.yaml: probe-set file is not UTF-8"),
    ("probeset-invalid-yaml", probe("broken.yaml"), "broken.yaml: invalid YAML"),
    ("probeset-list-key", probe("list-key.yaml"), "list-key.yaml: invalid YAML at line 1"),
    ("probeset-duplicate-key", probe("dup-key.yaml"), "duplicate key 'name'"),
    ("probeset-unknown-field", probe("unknown-field.yaml"), "colour: unknown field"),
    ("probeset-missing-field", probe("no-negative.yaml"), "negative: missing required field"),
    ("probeset-bad-kind", probe("bad-kind.yaml"), "kind: must be one of concept, paired"),
    ("probeset-bad-name", probe("bad-name.yaml"), "name: must match [a-z0-9-]+"),
    ("probeset-too-few", probe("few.yaml"), "negative: needs at least 2"),
    ("probeset-duplicate-text", probe("dup-text.yaml"), "negative[0]: duplicates positive[0]"),
    ("probeset-number-text", probe("number-text.yaml"), "positive[1]: expected a non-empty string, got int"),
    ("probeset-empty", probe("empty.yaml"), "empty.yaml: the file holds no probe set"),
    ("probeset-scalar", probe("scalar.yaml"), "scalar.yaml: a probe set must be a mapping"),
    ("probeset-missing-group", probe("missing-group.yaml"), "items[0].b: missing the text for group 'b'"),
    ("probeset-reserved-group", probe("reserved-group.yaml"), "groups[0]: expected a name"),
    # policies
    ("policy-missing", run("--policy", "{root}/absent-policy.yaml"), "absent-policy.yaml: no such policy file"),
    ("policy-nan", run("--policy", "{policy-nan.yaml}"), "checks[0].max: must be a finite number"),
    ("policy-name-list", run("--policy", "{policy-name-list.yaml}"), "checks[0].name: expected a non-empty string"),
    ("policy-metric", run("--policy", "{policy-metric.yaml}"), "checks[0].metric: must be one of"),
    ("policy-other-set", run("--policy", "{policy-other-set.yaml}"), "checks[0].probeset: 'absent' is not among"),
    ("policy-two-bounds", run("--policy", "{policy-two-bounds.yaml}"), "needs exactly one numeric bound"),
    ("policy-broken", run("--policy", "{policy-broken.yaml}"), "policy-broken.yaml: not readable YAML"),
    ("policy-fifo", run("--policy", "{fifo}"), "fifo: not a regular file (a FIFO); give a policy file"),
    ("render-policy-nan", render("results", "--policy", "{policy-nan.yaml}"), "checks[0].max: must be a finite"),
    # reference corpus and cache
    ("reference-missing", run("--reference", "{root}/absent.txt"), "absent.txt: no such reference corpus"),
    ("reference-short", run("--reference", "{reference-short.txt}"), "needs at least 10 non-empty lines, got 3"),
    ("reference-dev-zero", run("--reference", "/dev/zero"), "/dev/zero: not a regular file"),
    ("cache-is-file", run("--cache", "{a-file}"), "--cache:"),
    # --out, checked before the model loads
    ("out-is-file", run(out="{a-file}"), "exists and is not a folder"),
    ("out-parent-is-file", run(out="{out-parent-file}/report"), "out-parent-file is not a folder"),
    ("out-holds-other-files", run(out="{root}"), "holds other files"),
    ("render-out-is-file", ["render", "{results}", "--out", "{a-file}"], "exists and is not a folder"),
    # models: damaged, incomplete or foreign weights are named, never audited as random weights
    ("model-absent", run(model="{root}/no-model"), "--model: '"),
    ("model-is-file", model("m-file"), "m-file is a file"),
    ("model-no-config", model("m-empty"), "has no config.json"),
    ("model-truncated", model("m-truncated"), "model.safetensors: truncated safetensors file"),
    ("model-random-bytes", model("m-random"), "model.safetensors: damaged safetensors file"),
    ("model-huge-header", model("m-huge-header"), "header claims 4611686018427387904 bytes"),
    ("model-dangling-weights", model("m-dangling"), "model.safetensors: cannot read the weights file"),
    ("model-weights-folder", model("m-weights-folder"), "model.safetensors: not a regular file"),
    ("model-missing-tensor", model("m-missing"), "the checkpoint lacks tensor transformer.h.1.mlp.c_fc.weight"),
    ("model-unexpected-tensor", model("m-unexpected"), "does not use: transformer.h.9.mlp.c_fc.weight"),
    ("model-mis-shaped-tensor", model("m-shape"), "tensor transformer.h.0.mlp.c_fc.bias: checkpoint (100,)"),
    ("model-other-models-weights", model("m-other-model"), "the weights do not belong to this model"),
    ("model-adapter-beside", model("m-adapter"), "holds only a PEFT adapter (adapter_model.safetensors)"),
    ("model-adapter-only", model("m-adapter-only"), "holds only a PEFT adapter"),
    ("model-pickle-only", model("m-pickle"), "only pickle checkpoints (pytorch_model.bin)"),
    ("model-bad-pickle-allowed", model("m-pickle") + ["--allow-pickle"], "the weights cannot be loaded"),
    ("model-no-tokenizer", model("m-no-tokenizer"), "has no usable tokenizer files"),
    ("model-bad-config", model("m-bad-config"), "config.json is not a readable model config"),
    ("model-unsupported", model("m-unsupported"), "architecture 't5' is not supported"),
    # render: results.json is validated (JSON path in the message), read with a size cap, regular files only
    ("render-missing", ["render", "{root}/absent.json", "--out", "{out}"], "absent.json: no such results file"),
    ("render-not-json", render("results-not-json.json"), "not a readable results.json"),
    ("render-top-level-list", render("results-list.json"), "expected a JSON object at the top level"),
    ("render-missing-nested-key", render("results-missing-key"), "probesets[0].summary"),
    ("render-string-for-number", render("results-string-number"), "probesets[0].neurons[0].auroc"),
    ("render-no-model", render("results-no-model"), "model"),
    ("render-schema-version", render("results-version"), "schema_version"),
    ("render-deep-array", render("results-deep.json"), "nested too deeply"),
    ("render-fifo", render("fifo"), "fifo: not a regular file (a FIFO); give a results file"),
    ("render-dev-zero", ["render", "/dev/zero", "--out", "{out}"], "/dev/zero: not a regular file"),
    ("render-folder", render("root"), "is a folder; give a results file"),
    # import: sources and -o
    ("import-crows-folder", ["import", "crows-pairs", "{root}", "-o", "{root}/x.yaml"], "is a folder; give a"),
    ("import-crows-no-column", ["import", "crows-pairs", "{crows-no-column.csv}", "-o", "{root}/x.yaml"],
     "missing column 'stereo_antistereo'"),
    ("import-crows-direction", ["import", "crows-pairs", "{crows-bad-direction.csv}", "-o", "{root}/x.yaml"],
     "row 2: stereo_antistereo must be"),
    ("import-winobias-latin1", ["import", "winobias", "{root}/winobias-latin1", "-o", "{root}/x.yaml"],
     "pro_stereotyped_type1.txt.dev: WinoBias file is not UTF-8"),
    ("import-winobias-twin", ["import", "winobias", "{root}/winobias-no-twin", "-o", "{root}/x.yaml"],
     "anti_stereotyped_type1.txt.dev: missing"),
    ("import-winobias-file", ["import", "winobias", "{a-file}", "-o", "{root}/x.yaml"], "a-file: not a folder"),
    ("import-output-folder", ["import", "winobias", "{root}/winobias-no-twin", "-o", "{root}"], "is a folder"),
    ("import-output-parent-file", ["import", "crows-pairs", "{crows-no-column.csv}", "-o", "{a-file}/x.yaml"],
     "a-file does not exist or is not a folder"),
    ("import-output-parent-missing", ["import", "crows-pairs", "{crows-no-column.csv}", "-o", "{root}/no/x.yaml"],
     "does not exist or is not a folder"),
    # validate
    ("validate-fifo", ["validate", "{fifo}"], "fifo: not a regular file"),
    ("validate-list-key", ["validate", "{good.yaml}", "{list-key.yaml}"], "list-key.yaml: invalid YAML"),
    # --- issue 23: every verb, every path through the one input gate ---------------------------------------
    # run: corpora, reference, word vectors, policies, sizes and scale-out options
    ("run-corpus-fifo", run("--corpus", "{fifo}"), "--corpus: "),
    ("run-corpus-fifo-named", run("--corpus", "{fifo}"), "fifo: not a regular file (a FIFO); give a corpus file"),
    ("run-corpus-folder", run("--corpus", "{root}"), "is a folder; give a corpus file"),
    ("run-corpus-missing", run("--corpus", "{root}/absent.txt"), "absent.txt: no such corpus file"),
    ("run-corpus-dev-zero", run("--corpus", "/dev/zero"), "/dev/zero: not a regular file (a device)"),
    ("run-corpus-jsonl", run("--corpus", "{corpus-bad.jsonl}"), "line 1 is not JSON"),
    ("run-corpus-latin1", run("--corpus", "{corpus-latin1.txt}"), "line 1 is not UTF-8"),
    ("run-corpus-empty", run("--corpus", "{corpus-empty.txt}"), "holds no text"),
    ("run-reference-fifo", run("--reference", "{fifo}"), "fifo: not a regular file (a FIFO); give a reference"),
    ("run-reference-folder", run("--reference", "{root}"), "is a folder; give a reference corpus"),
    ("run-reference-latin1", run("--reference", "{reference-latin1.txt}"), "reference corpus is not UTF-8 text "
     "(line 3"),
    ("run-word-vectors-fifo", run("--word-vectors", "{fifo}"), "--word-vectors: "),
    ("run-word-vectors-fifo-named", run("--word-vectors", "{fifo}"), "fifo: not a regular file (a FIFO)"),
    ("run-word-vectors-missing", run("--word-vectors", "{root}/absent.vec"), "no such fastText vectors file"),
    ("run-word-vectors-folder", run("--word-vectors", "{root}"), "is a folder; give a fastText vectors file"),
    ("run-word-vectors-suffix", run("--word-vectors", "{vectors.txt}"), "expected a fastText .bin or .vec file"),
    ("run-word-vectors-dims", run("--word-vectors", "{vectors-bad.vec}"), "line 3 has 2 values, expected 3"),
    ("run-memory-budget-word", run("--memory-budget", "lots"), "--memory-budget must be a size from 64MB"),
    ("run-memory-budget-tiny", run("--memory-budget", "1MB"), "--memory-budget must be a size from 64MB"),
    ("run-memory-budget-unit", run("--memory-budget", "2TB"), "got '2TB'"),
    ("run-workers-local", run("--workers", "2"), "--workers: only applies with --executor ray"),
    ("run-ray-address-local", run("--ray-address", "127.0.0.1:1"), "--ray-address: only applies with --executor"),
    ("run-resume-unsharded", run("--resume"), "--resume: local runs keep shard states only with --shard-size"),
    ("run-shard-size-0", run("--shard-size", "0"), "--shard-size must be an int in"),
    ("run-workers-0", run("--workers", "0"), "--workers must be an int in"),
    ("run-executor", run("--executor", "dask"), "--executor: invalid choice"),
    ("run-dtype", run("--dtype", "int4"), "--dtype: invalid choice"),
    ("run-max-length-word", run("--max-length", "long"), "--max-length must be an int"),
    ("run-policy-folder", run("--policy", "{root}"), "is a folder; give a policy file"),
    ("run-policy-latin1", run("--policy", "{policy-latin1.yaml}"), "policy file is not UTF-8 text (line 2"),
    ("run-policy-empty-checks", run("--policy", "{policy-empty-checks.yaml}"), "holding a non-empty list"),
    ("run-policy-dev-zero", run("--policy", "/dev/zero"), "/dev/zero: not a regular file"),
    ("probeset-bad-byte-line-5", probe("probe-bad-line5.yaml"), "probe-set file is not UTF-8 text (line 5"),
    ("probeset-dev-null", run(probes=("/dev/null",)), "/dev/null: not a regular file (a device)"),
    # compare: its corpus, sizes and options, all before a model loads
    ("compare-corpus-missing", compare("--corpus", "{root}/absent.txt"), "--corpus: "),
    ("compare-corpus-missing-named", compare("--corpus", "{root}/absent.txt"), "absent.txt: no such corpus file"),
    ("compare-corpus-short", compare("--corpus", "{reference-short.txt}"), "--corpus: "),
    ("compare-corpus-short-named", compare("--corpus", "{reference-short.txt}"),
     "needs at least 10 non-empty lines, got 3"),
    ("compare-corpus-fifo", compare("--corpus", "{fifo}"), "fifo: not a regular file (a FIFO); give a corpus"),
    ("compare-corpus-folder", compare("--corpus", "{root}"), "is a folder; give a corpus file"),
    ("compare-memory-budget-word", compare("--memory-budget", "lots"), "--memory-budget must be a size from 16MB"),
    ("compare-memory-budget-huge", compare("--memory-budget", "8192GB"), "got '8192GB'"),
    ("compare-align", compare("--align", "words"), "--align: invalid choice"),
    ("compare-layers", compare("--layers", "some"), "--layers: invalid choice"),
    ("compare-precision", compare("--precision", "int8"), "--precision: invalid choice"),
    ("compare-top-changed-0", compare("--top-changed", "0"), "--top-changed must be an int in [1, 10000]"),
    ("compare-cards-0", compare("--cards", "0"), "--cards must be an int in [1, 100]"),
    ("compare-baseline-stride-0", compare("--baseline-stride", "0"), "--baseline-stride must be an int"),
    ("compare-policy-no-audit", compare("--policy", "{compare-policy.yaml}", "--no-audit"), "drop --no-audit"),
    ("compare-audit-policy", compare("--policy", "{policy-metric.yaml}"), "checks[0].metric: must be one of"),
    ("compare-no-model-b", ["compare", "--model-a", "{model}"], "--model-b"),
    ("compare-model-a-absent", compare(model_a="{root}/no-model"), "--model-a"),
    ("compare-model-b-file", compare(model_b="{m-file}"), "--model-b"),
    ("compare-out-is-file", compare(out="{a-file}"), "exists and is not a folder"),
    ("compare-workers-local", compare("--workers", "2"), "--workers: only applies with --executor ray"),
    ("compare-probeset-missing", compare(probes=("{root}/absent.yaml",)), "absent.yaml: no such probe-set file"),
    # explain
    ("explain-corpus-fifo", explain("--corpus", "{fifo}"), "fifo: not a regular file (a FIFO); give a corpus"),
    ("explain-corpus-folder", explain("--corpus", "{root}"), "is a folder; give a corpus file"),
    ("explain-corpus-missing", explain("--corpus", "{root}/absent.txt"), "no such corpus file"),
    ("explain-neuron-name", explain(neuron="neuron 5"), "--neuron: expected a name like L2.N693"),
    ("explain-neuron-outside", explain(neuron="L9.N0"), "is outside the model"),
    ("explain-top-1", explain("--top", "1"), "--top: expected an int in [2, 1000]"),
    ("explain-reference-fifo", explain("--reference", "{fifo}"), "fifo: not a regular file (a FIFO)"),
    ("explain-reference-short", explain("--reference", "{reference-short.txt}"), "needs at least 10"),
    ("explain-word-vectors-missing", explain("--word-vectors", "{root}/absent.vec"), "no such fastText vectors"),
    ("explain-json-folder", explain("--json", "{root}"), "--json: "),
    ("explain-resume-no-json", explain("--resume"), "--resume: needs --json"),
    ("explain-workers-local", explain("--workers", "3"), "--workers: only applies with --executor ray"),
    # a bad byte on line 1501 of a streamed corpus: the exact line, after shard states were made (and removed)
    ("explain-corpus-line-1501", explain("--corpus", "{corpus-1501.txt}", "--json", "{out}/x.json",
                                         "--shard-size", "64", "--reference", "{reference-ok.txt}"),
     "corpus-1501.txt: corpus file: line 1501 is not UTF-8"),
    # search
    ("search-missing", ["search", "{root}/absent.json", "--token", "x"], "no such results file"),
    ("search-fifo", ["search", "{fifo}", "--token", "x"], "fifo: not a regular file (a FIFO)"),
    ("search-folder", ["search", "{root}", "--token", "x"], "is a folder; give a results file"),
    ("search-comparison", ["search", "{cmp-ok}", "--token", "x"], "a comparison.json, not a results.json"),
    ("search-empty-pattern", ["search", "{res-empty-pattern}", "--token", "poison"],
     "explanation.graph[0].tokens: a graph pattern needs at least its activating token"),
    ("search-null-token", ["search", "{res-null-token}", "--token", "poison"],
     "explanation.top_tokens[0].token: expected a string, got null"),
    ("search-null-activation", ["search", "{res-null-activation}", "--token", "poison"],
     "explanation.graph[0].activation: expected a number, got null"),
    ("search-no-token", ["search", "{results}"], "--token"),
    ("search-not-json", ["search", "{results-not-json.json}", "--token", "x"], "not a readable results.json"),
    # render: semantic checks after the schema, one line naming the JSON path
    ("render-cmp-empty-layers", render("cmp-empty-layers"), "layers_a: expected at least one layer"),
    ("render-cmp-empty-edges", render("cmp-empty-edges"), "histogram.edges: expected at least 2 bin edges, got 0"),
    ("render-cmp-counts-shape", render("cmp-counts-shape"), "histogram.best: 3 counts for"),
    ("render-cmp-null-edge", render("cmp-null-edge"), "histogram.edges[0]: expected a number, got null"),
    ("render-cmp-unknown-set", render("cmp-unknown-set"), "probesets[0].name: 'absent' names no probe set of "
     "audits.a"),
    ("render-cmp-no-audits", render("cmp-no-audits"), "probe-set diffs need the two audits"),
    ("render-cmp-twice", render("cmp-twice"), "is diffed twice"),
    ("render-cmp-zero-neurons", render("cmp-zero-neurons"), "layers_a[0].n_neurons: expected a positive count"),
    ("render-cmp-audit-span", render("cmp-audit-span"), "audits.b.probesets[0]"),
    ("render-cmp-audit-policy", render("cmp-ok", "--policy", "{policy-nan.yaml}"),
     "checks[0].metric: must be one of new_selective_neurons"),
    ("render-cmp-policy-metric", render("cmp-ok", "--policy", "{policy-other-set.yaml}"),
     "checks[0].metric: must be one of"),
    ("render-results-compare-policy", render("results", "--policy", "{compare-policy.yaml}"),
     "checks[0].metric: must be one of"),
    ("render-res-duplicate-set", render("res-duplicate-set"), "repeats probesets[0]"),
    ("render-res-span-outside", render("res-span-outside"), "expected [start, end] within the text's"),
    ("render-res-spans-count", render("res-spans-count"), "spans for"),
    ("render-res-per-layer", render("res-per-layer"), "per_layer_significant_positive: 3 values for the model's 2"),
    ("render-res-ci", render("res-ci"), "probesets[0].neurons[0].auroc_ci95: expected [low, high]"),
    ("render-res-null-sets", render("res-null-sets"), "run.settings.null_sets: expected an integer, got null"),
    ("render-res-fidelity-texts", render("res-no-fidelity-texts"), "fidelity_texts: missing"),
    ("render-empty-file", render("corpus-empty.txt"), "not a readable results.json"),
    # import: every source through the gate, types checked with the file and row/line/JSON path
    ("import-stereoset-fifo", ["import", "stereoset", "{fifo}", "-o", "{root}/x.yaml"],
     "fifo: not a regular file (a FIFO); give a StereoSet JSON file"),
    ("import-stereoset-folder", ["import", "stereoset", "{root}", "-o", "{root}/x.yaml"],
     "is a folder; give a StereoSet JSON file"),
    ("import-stereoset-missing", ["import", "stereoset", "{root}/absent.json", "-o", "{root}/x.yaml"],
     "no such StereoSet JSON file"),
    ("import-stereoset-intersentence-number", ["import", "stereoset", "{stereo-inter-number.json}", "-o",
                                               "{root}/x.yaml"], "data.intersentence: expected a list"),
    ("import-stereoset-id-list", ["import", "stereoset", "{stereo-id-list.json}", "-o", "{root}/x.yaml"],
     "data.intrasentence[0].id: expected a non-empty string, got list"),
    ("import-stereoset-not-json", ["import", "stereoset", "{stereo-not-json.json}", "-o", "{root}/x.yaml"],
     "not a readable JSON file"),
    ("import-stereoset-no-intrasentence", ["import", "stereoset", "{stereo-no-intra.json}", "-o", "{root}/x.yaml"],
     "data.intrasentence: missing"),
    ("import-stereoset-sentence-number", ["import", "stereoset", "{stereo-sentence-number.json}", "-o",
                                          "{root}/x.yaml"], "sentences[0].sentence: expected a non-empty string"),
    ("import-stereoset-label-list", ["import", "stereoset", "{stereo-bad-label.json}", "-o", "{root}/x.yaml"],
     "sentences[0].gold_label: expected one of"),
    ("import-stereoset-latin1", ["import", "stereoset", "{stereo-latin1.json}", "-o", "{root}/x.yaml"],
     "StereoSet JSON file is not UTF-8 text (line 2"),
    ("import-winobias-occupations-latin1", ["import", "winobias", "{root}/winobias-occ", "-o", "{root}/x.yaml"],
     "female_occupations.txt: WinoBias occupation list is not UTF-8"),
    ("import-winobias-fifo", ["import", "winobias", "{fifo}", "-o", "{root}/x.yaml"], "not a folder (a FIFO)"),
    ("import-winobias-missing", ["import", "winobias", "{root}/absent", "-o", "{root}/x.yaml"], "no such folder"),
    ("import-winobias-bad-line", ["import", "winobias", "{root}/winobias-bad-line", "-o", "{root}/x.yaml"],
     "row 1: expected '<number> <sentence>'"),
    ("import-winobias-uneven", ["import", "winobias", "{root}/winobias-uneven", "-o", "{root}/x.yaml"],
     "the files must align line by line"),
    ("import-winobias-grouping", ["import", "winobias", "{root}/winobias-occ", "--grouping", "x", "-o",
                                  "{root}/x.yaml"], "--grouping: invalid choice"),
    ("import-crows-fifo", ["import", "crows-pairs", "{fifo}", "-o", "{root}/x.yaml"], "not a regular file (a FIFO)"),
    ("import-crows-missing", ["import", "crows-pairs", "{root}/absent.csv", "-o", "{root}/x.yaml"],
     "no such CSV file"),
    ("import-crows-latin1", ["import", "crows-pairs", "{crows-latin1.csv}", "-o", "{root}/x.yaml"],
     "CSV file is not UTF-8 text (line 3"),
    ("import-crows-empty-cell", ["import", "crows-pairs", "{crows-empty-cell.csv}", "-o", "{root}/x.yaml"],
     "row 2: sent_less is empty"),
    ("import-crows-no-rows", ["import", "crows-pairs", "{crows-no-rows.csv}", "-o", "{root}/x.yaml"], "no data rows"),
    ("import-unknown-format", ["import", "bbq", "{crows-no-rows.csv}", "-o", "{root}/x.yaml"], "invalid choice"),
    ("import-no-output", ["import", "crows-pairs", "{crows-no-rows.csv}"], "-o/--output"),
    # validate and schema
    ("validate-missing", ["validate", "{root}/absent.yaml"], "no such probe-set file"),
    ("validate-folder", ["validate", "{root}"], "is a folder; give a probe-set file"),
    ("validate-second-bad", ["validate", "{good.yaml}", "{latin1.yaml}"], "latin1.yaml: probe-set file is not UTF-8"),
    ("validate-dev-zero", ["validate", "/dev/zero"], "/dev/zero: not a regular file (a device)"),
    ("schema-unknown-option", ["schema", "--frobnicate"], "unrecognized arguments: --frobnicate"),
]


def _fill(argv: list[str], world: dict[str, str], out: Path) -> list[str]:
    """Put the module's paths into ``{name}`` placeholders (names hold dots, so no str.format)."""
    paths = {**world, "out": str(out)}
    return [re.sub(r"\{([^{}]+)\}", lambda m: paths[m.group(1)], arg) for arg in argv]


def _snapshot(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    if folder.is_file():
        return {"": folder.read_bytes()}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_table_is_large_and_ids_are_unique():
    assert len(CASES) >= 150
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("argv, needle", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_exits_2_with_one_line_and_leaves_out_alone(argv, needle, world, small_report, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(small_report, out)  # an old complete report set that must survive untouched
    root = Path(world["root"])
    watched = {"out": _snapshot(out), "root": sorted(p.name for p in root.iterdir())}
    args = _fill(argv, world, out)
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("neuron-audit: error: "), err
    assert "Traceback" not in err
    assert needle in err, err
    assert _snapshot(out) == watched["out"]
    assert sorted(p.name for p in root.iterdir()) == watched["root"]  # no lock, staging or output left behind


def test_a_second_run_on_the_same_out_fails_at_once(world, tmp_path, capsys):
    from audit.results.outdir import OutputLock

    out = tmp_path / "new-out"
    with OutputLock(out):
        code = main(_fill(run(), world, out))
    err = capsys.readouterr().err
    assert code == 2 and "is being written by another neuron-audit run" in err and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_out_parent_fails_before_the_model_loads(world, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert main(_fill(run(), world, locked / "report")) == 2
    assert "cannot write in" in capsys.readouterr().err


def test_allowed_weights_load_and_are_recorded(world):
    from audit.model.loading import load_model

    model = load_model(world["m-missing"], device="cpu", allow_weights=["transformer.h.1.mlp.*"])
    assert model.summary()["weights_allowed"] == ["missing transformer.h.1.mlp.c_fc.weight"]
    assert "weights_allowed" not in load_model(world["model"], device="cpu").summary()


# --- issue 23: promises kept beyond exit code 2 -----------------------------------------------------------------


def test_a_null_output_delta_renders_and_its_policy_check_is_not_evaluated(world, tmp_path, capsys):
    """A comparison whose output delta came out NaN (null) renders; a check on it is NOT EVALUATED with the
    reason, never a PASS (was TypeError)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("checks:\n  - {probeset: gender, metric: output_disparity_change, max: 0.5}\n")
    code = main(["render", world["cmp-null-delta"], "--out", str(tmp_path / "out"), "--no-pdf", "--policy",
                 str(policy), "--fail-on-policy"])
    captured = capsys.readouterr()
    assert code == 0, captured.err  # nothing crashed, and an unevaluated check is not a failure
    assert "policy NOT EVALUATED: gender: output_disparity_change max 0.5" in captured.out
    (check,) = json.loads((tmp_path / "out" / "comparison.json").read_text())["policy"]["checks"]
    assert check["value"] is None and check["outcome"] == "NOT EVALUATED" and check["passed"] is None
    assert check["reason"]
    assert "Δ —" in (tmp_path / "out" / "report.html").read_text()


def test_a_crows_pairs_csv_saved_with_a_bom_imports(tmp_path, capsys):
    source = tmp_path / "crows.csv"
    source.write_bytes(b"\xef\xbb\xbf,sent_more,sent_less,stereo_antistereo,bias_type\r\n"
                       b"0,The poor are lazy.,The rich are lazy.,stereo,socioeconomic\r\n"
                       b"1,She cried.,He cried.,stereo,gender\r\n")
    assert main(["import", "crows-pairs", str(source), "-o", str(tmp_path / "out.yaml")]) == 0, \
        capsys.readouterr().err
    (document,) = yaml.safe_load_all((tmp_path / "out.yaml").read_text())
    assert document["items"][0]["stereotypical"] == "The poor are lazy." and document["items"][0]["meta"]["index"] == "0"


def test_an_existing_output_file_keeps_its_mode(tmp_path):
    source = tmp_path / "crows.csv"
    source.write_text("sent_more,sent_less,stereo_antistereo,bias_type\na b,c d,stereo,race\ne f,g h,stereo,race\n")
    out = tmp_path / "private.yaml"
    out.write_text("old")
    out.chmod(0o600)
    assert main(["import", "crows-pairs", str(source), "-o", str(out)]) == 0
    assert out.read_text() != "old" and (out.stat().st_mode & 0o777) == 0o600
    fresh = tmp_path / "fresh.yaml"
    assert main(["import", "crows-pairs", str(source), "-o", str(fresh)]) == 0
    mask = os.umask(0)
    os.umask(mask)
    assert (fresh.stat().st_mode & 0o777) == 0o666 & ~mask


def test_memory_budget_parses_alike_on_run_and_compare():
    from audit.cli import build_parser

    parser = build_parser()
    for verb in (["run"], ["compare", "--model-a", "a", "--model-b", "b"]):
        for text, mib in (("2GB", 2048), ("512MB", 512), ("512", 512), ("1.5G", 1536), ("4GiB", 4096)):
            assert parser.parse_args([*verb, "--memory-budget", text]).memory_budget == mib, (verb, text)


def test_resume_refuses_a_reference_corpus_edited_since_the_interrupted_run(world, tmp_path, monkeypatch, capsys):
    import audit.stages.audit

    reference = tmp_path / "reference.txt"
    reference.write_text("".join(f"an ordinary sentence number {i}\n" for i in range(12)))
    out = tmp_path / "out"
    argv = _fill(run("--reference", str(reference), "--shard-size", "8"), world, out)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # the run stops after its shard-state folder was made, as a Ctrl-C would

    monkeypatch.setattr(audit.stages.audit, "run_audit", interrupted)
    assert main(argv) == 130
    assert (out / ".state" / "run.json").is_file()  # kept for --resume
    reference.write_text(reference.read_text().replace("number 3", "number three"))
    assert main([*argv, "--resume"]) == 2
    assert "belongs to a run with other reference corpus" in capsys.readouterr().err
