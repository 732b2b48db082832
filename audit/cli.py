"""Command line: ``neuron-audit run | render | schema | validate | import``. Thin: parse, call the pipeline, write outputs.

Exit codes: 0 ok, 2 bad input (one line naming the file/field/option), 1 unexpected error,
3 a policy check failed under --fail-on-policy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from .errors import AuditInputError

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_POLICY = 0, 1, 2, 3
REPORTS_DIR = Path("reports")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AuditInputError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neuron-audit", description="Audit a language model's MLP neurons with probe sets.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="audit a model with probe sets and write results.json + report.html")
    run.add_argument("--model", default="default",
                     help="'default' (all-MiniLM-L6-v2, bundled), 'smollm2' (SmolLM2-135M-Instruct, 4-bit GGUF, "
                          "bundled), a local model folder or .gguf file, or a Hugging Face id")
    run.add_argument("--probeset", nargs="+", metavar="FILE", help="probe-set YAML files (default: all bundled)")
    run.add_argument("--out", metavar="DIR", help="output folder (default: reports/<model>-<UTC timestamp>/)")
    run.add_argument("--top-k", type=_positive_int, default=20, help="neurons reported per probe set (default 20)")
    run.add_argument("--seed", type=int, default=0, help="seed for bootstrap and controls (default 0)")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    run.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                     help="weights' dtype (default auto: bfloat16 on CUDA, float32 on CPU)")
    run.add_argument("--device-map", choices=("auto",), help="spread a model larger than one device over all "
                     "visible devices (accelerate)")
    run.add_argument("--gguf-cache", metavar="DIR", help="where dequantised copies of GGUF files are kept for "
                     "fast reloads ('off': none; default: the user cache folder, or $NEURON_AUDIT_CACHE_DIR)")
    run.add_argument("--batch-size", type=_positive_int, default=32, help="texts per forward pass (default 32)")
    run.add_argument("--max-length", type=_positive_int, default=128, help="tokens per text before truncation")
    run.add_argument("--pooling", choices=("max", "mean"), default="max", help="per-text pooling (default max)")
    run.add_argument("--ablate-k", type=_positive_int, default=10, help="neurons ablated per probe set (default 10)")
    run.add_argument("--ablate-per-layer", type=_positive_int, metavar="K",
                     help="ablate the top K of each layer instead")
    run.add_argument("--ablation-mode", choices=("zero", "mean", "dampen"), default="mean",
                     help="how flagged neurons are ablated (default mean: their mean on negative texts)")
    run.add_argument("--null-sets", type=_positive_int, default=20, help="random neuron sets for the null (default 20)")
    run.add_argument("--ablation-texts", type=_positive_int, default=25,
                     help="texts per side (or items) evaluated under ablation (default 25)")
    run.add_argument("--reference", metavar="FILE", help="general reference corpus, one text per line "
                     "(default: the bundled everyday sentences)")
    run.add_argument("--no-ablation", action="store_true", help="skip ablation validation")
    run.add_argument("--policy", metavar="FILE", help="audit config with PASS/FAIL thresholds (YAML)")
    run.add_argument("--fail-on-policy", action="store_true", help="exit with code 3 when a policy check fails")
    run.add_argument("--no-pdf", action="store_true", help="write report.html only, not report.pdf")
    run.add_argument("--hf-cache-dir", metavar="DIR", help="Hugging Face cache to load --model ids from")
    run.add_argument("--cache", metavar="DIR", help="keep harvests here and reuse them when model, texts and "
                     "settings match (faster re-runs)")
    run.add_argument("--allow-pickle", action="store_true", help="allow loading pickle (.bin) checkpoints")
    run.add_argument("--trust-remote-code", action="store_true", help="allow a model's own Python code to run")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")

    render = commands.add_parser("render", help="re-render report.html/report.pdf from a results.json, no model")
    render.add_argument("results", metavar="RESULTS.json")
    render.add_argument("--out", required=True, metavar="DIR")
    render.add_argument("--policy", metavar="FILE", help="evaluate (or re-evaluate) policy checks on these results")
    render.add_argument("--fail-on-policy", action="store_true", help="exit with code 3 when a policy check fails")
    render.add_argument("--no-pdf", action="store_true", help="write report.html only")

    commands.add_parser("schema", help="print the JSON Schema of results.json (schema_version 1)")

    validate = commands.add_parser("validate", help="check probe-set YAML files")
    validate.add_argument("files", nargs="+", metavar="FILE")

    importer = commands.add_parser("import", help="convert a bias benchmark into a probe-set YAML file")
    importer.add_argument("format", choices=("crows-pairs", "winobias"))
    importer.add_argument("source", metavar="FILE_OR_DIR", help="CrowS-Pairs CSV file, or WinoBias folder")
    importer.add_argument("-o", "--output", required=True, metavar="OUT.yaml")
    importer.add_argument("--split-by-bias-type", action="store_true",
                          help="CrowS-Pairs: one probe set per bias type instead of a marker per item")
    return parser


def cmd_schema(args: argparse.Namespace) -> int:
    from .results.schema import results_schema

    print(json.dumps(results_schema(), indent=2))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from .probes.probeset import load_probesets

    for probeset in load_probesets(args.files):
        count = (f"{len(probeset.positive)} positive / {len(probeset.negative)} negative"
                 if probeset.kind == "concept" else f"{len(probeset.items)} items × {len(probeset.groups)} groups")
        print(f"ok  {probeset.path}: {probeset.name} ({probeset.kind}, {count})")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from .config import RunConfig
    from .model.loading import load_model
    from .probes.probeset import bundled_probeset_paths, load_probesets
    from .results.io import to_json
    from .results.policy import check_applies, load_policy
    from .stages.audit import run_audit

    config = RunConfig(top_k=args.top_k, seed=args.seed, batch_size=args.batch_size,
                       max_length=args.max_length, pooling=args.pooling, progress=not args.no_progress,
                       ablation=not args.no_ablation, ablate_k=args.ablate_k, ablate_per_layer=args.ablate_per_layer,
                       ablation_mode=args.ablation_mode, null_sets=args.null_sets,
                       ablation_texts=args.ablation_texts, reference=args.reference, cache_dir=args.cache)
    probesets = load_probesets(args.probeset or bundled_probeset_paths())
    policy = load_policy(args.policy) if args.policy else None
    if policy is not None:
        check_applies(policy, probesets, ablation=config.ablation)  # before the model loads, not after the run
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise AuditInputError(f"--out: {args.out} exists and is not a folder")
    if args.cache and Path(args.cache).exists() and not Path(args.cache).is_dir():
        raise AuditInputError(f"--cache: {args.cache} exists and is not a folder")
    if args.reference:
        from .probes.reference import load_reference

        load_reference(args.reference)  # fail on a bad corpus before the model loads
    model = load_model(args.model, device=args.device, allow_pickle=args.allow_pickle,
                       trust_remote_code=args.trust_remote_code, cache_dir=args.hf_cache_dir, dtype=args.dtype,
                       device_map=args.device_map, gguf_cache=args.gguf_cache)
    result = to_json(run_audit(model, probesets, config))  # exactly what results.json holds
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else REPORTS_DIR / f"{model.slug}-{stamp}"
    code = _publish(result, out, policy=policy, pdf=not args.no_pdf, fail_on_policy=args.fail_on_policy)
    for section in result["probesets"]:
        top = ", ".join(f"{n['name']} (AUROC {n['auroc']:.3f})" for n in section.get("neurons", [])[:3])
        if top:
            print(f"  {section['name']}: {section['summary']['n_significant']} selective neurons; top {top}")
        if "disparity" in section:
            counts = section["disparity"]["counts"]["q_and_effect"]["per_group"]
            print(f"  {section['name']}: group-selective neurons " + ", ".join(f"{g} {n}" for g, n in counts.items()))
        ablation = section.get("ablation")
        if ablation and "effect" in ablation:
            z = "n/a" if ablation["z"] is None else f"{ablation['z']:.1f}"
            print(f"    ablating {len(ablation['neurons'])} neurons ({ablation['mode']}): effect "
                  f"{ablation['effect']:.4g} vs null {ablation['null']['mean']:.4g}, z {z}, "
                  f"p {ablation['p_value']:.3f}")
    return code


def cmd_render(args: argparse.Namespace) -> int:
    from .results.io import load_results, to_json
    from .results.policy import load_policy

    result = to_json(load_results(args.results))  # validated against the published schema
    policy = load_policy(args.policy) if args.policy else None
    return _publish(result, Path(args.out), policy=policy, pdf=not args.no_pdf, fail_on_policy=args.fail_on_policy)


def _publish(result: dict, out: Path, *, policy: dict | None, pdf: bool, fail_on_policy: bool) -> int:
    """Evaluate the policy, render, and write results.json, report.html (and report.pdf) atomically."""
    from .results.io import dumps, write_outputs
    from .results.policy import evaluate
    from .results.report import render_html, render_pdf

    if out.exists() and not out.is_dir():
        raise AuditInputError(f"--out: {out} exists and is not a folder")
    stale = out / "report.pdf"
    if not pdf and stale.exists():
        stale.unlink()  # an old PDF beside new results would mislead
    if policy is not None:
        result["policy"] = evaluate(policy, result)
    tick = time.perf_counter()
    html = render_html(result)
    files: dict[str, str | bytes] = {"results.json": dumps(result), "report.html": html}
    if pdf:
        files["report.pdf"] = render_pdf(html)
    write_outputs(out, files)
    print(f"wrote {', '.join(str(out / name) for name in files)} (rendering {time.perf_counter() - tick:.1f} s)")
    if "policy" in result:
        for check in result["policy"]["checks"]:
            print(f"  policy {check['verdict']}: {check['name']} (value {check['value']:.4g})")
        if fail_on_policy and not result["policy"]["passed"]:
            return EXIT_POLICY
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from .probes.crows_pairs import import_crows_pairs
    from .probes.export import to_yaml
    from .probes.winobias import import_winobias
    from .results.io import write_outputs

    if args.format == "crows-pairs":
        documents = import_crows_pairs(args.source, split=args.split_by_bias_type)
    else:
        documents = import_winobias(args.source)
    output = Path(args.output)
    if output.is_dir():
        raise AuditInputError(f"--output: {output} is a folder; give a file name ending in .yaml")
    write_outputs(output.parent, {output.name: to_yaml(documents, source=args.source)})
    items = sum(len(d["items"]) for d in documents)
    print(f"wrote {output}: {len(documents)} probe set(s), {items} items")
    return EXIT_OK


COMMANDS = {"run": cmd_run, "render": cmd_render, "schema": cmd_schema, "validate": cmd_validate,
            "import": cmd_import}


def _quiet_libraries() -> None:
    """Keep the terminal to our own progress bars and messages: no loader bars or library warnings."""
    import logging
    import warnings

    logging.getLogger("transformers").setLevel(logging.ERROR)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        return


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neuron-audit`` and ``python -m audit``."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _quiet_libraries()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except AuditInputError as exc:
        print(f"neuron-audit: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("neuron-audit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, exit 1, traceback on --debug
        if debug:
            raise
        print(f"neuron-audit: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_ERROR
