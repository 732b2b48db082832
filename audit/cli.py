"""Command line: ``neuron-audit run | compare | render | schema | validate | import``.

Thin: parse, call the pipeline, write outputs.

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
                     help="'default' (all-MiniLM-L6-v2, bundled), a local model folder, or a Hugging Face id")
    run.add_argument("--probeset", nargs="+", metavar="FILE", help="probe-set YAML files (default: all bundled)")
    run.add_argument("--out", metavar="DIR", help="output folder (default: reports/<model>-<UTC timestamp>/)")
    run.add_argument("--top-k", type=_positive_int, default=20, help="neurons reported per probe set (default 20)")
    run.add_argument("--seed", type=int, default=0, help="seed for bootstrap and controls (default 0)")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
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

    render = commands.add_parser("render", help="re-render report.html/report.pdf from a results.json or a "
                                 "comparison.json, no model")
    render.add_argument("results", metavar="RESULTS.json")
    render.add_argument("--out", required=True, metavar="DIR")
    render.add_argument("--policy", metavar="FILE", help="evaluate (or re-evaluate) policy checks on these results")
    render.add_argument("--fail-on-policy", action="store_true", help="exit with code 3 when a policy check fails")
    render.add_argument("--no-pdf", action="store_true", help="write report.html only")

    compare = commands.add_parser("compare", help="compare two checkpoints neuron by neuron and diff their audits")
    compare.add_argument("--model-a", required=True, metavar="A", help="the reference model: 'default', a local "
                         "model folder, or a Hugging Face id")
    compare.add_argument("--model-b", required=True, metavar="B", help="the model compared against A (any "
                         "supported architecture and size)")
    compare.add_argument("--probeset", nargs="+", metavar="FILE",
                         help="probe-set YAML files to audit in both models (default: all bundled)")
    compare.add_argument("--no-audit", action="store_true", help="only match neurons; no audits, no audit diff")
    compare.add_argument("--corpus", metavar="FILE", help="texts to correlate neurons on, one per line "
                         "(default: the bundled everyday reference sentences)")
    compare.add_argument("--out", metavar="DIR", help="output folder (default: reports/compare-<A>-<B>-<UTC time>/)")
    compare.add_argument("--layers", choices=("auto", "same", "depth", "all"), default="auto",
                         help="layer pairs to correlate: same index, nearest relative depth, or all pairs "
                              "(default auto: same when the depths match, else depth)")
    compare.add_argument("--align", choices=("auto", "tokens", "texts"), default="auto",
                         help="samples: tokens (same tokenizer) or per-text means (default auto)")
    compare.add_argument("--baseline-stride", type=_positive_int, default=8,
                         help="the rotation baseline estimates its mixtures' variances on every n-th token of "
                              "each text (default 8)")
    compare.add_argument("--memory-budget", type=_positive_int, default=2048, metavar="MB",
                         help="largest correlation state held at once; more layer pairs take more passes")
    compare.add_argument("--top-changed", type=_positive_int, default=20, help="neurons in the changed table")
    compare.add_argument("--cards", type=_positive_int, default=3, help="matched pairs' cards per probe set")
    for option in ("--top-k", "--seed", "--device", "--batch-size", "--max-length", "--pooling", "--ablate-k",
                   "--ablation-mode", "--null-sets", "--ablation-texts", "--no-ablation", "--policy",
                   "--fail-on-policy", "--no-pdf", "--hf-cache-dir", "--cache", "--allow-pickle",
                   "--trust-remote-code", "--no-progress"):
        action = next(a for a in run._actions if option in a.option_strings)
        compare._add_action(action)

    schema = commands.add_parser("schema", help="print the JSON Schema of results.json (schema_version 1)")
    schema.add_argument("--compare", action="store_true", help="the schema of comparison.json instead")

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

    from .results.schema import comparison_schema

    print(json.dumps(comparison_schema() if args.compare else results_schema(), indent=2))
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
                       trust_remote_code=args.trust_remote_code, cache_dir=args.hf_cache_dir)
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


def cmd_compare(args: argparse.Namespace) -> int:
    from .config import CompareConfig, RunConfig
    from .model.loading import load_model
    from .probes.probeset import bundled_probeset_paths, load_probesets
    from .probes.reference import REFERENCE_FILE, load_reference
    from .provenance import sha256_file
    from .results.io import to_json
    from .results.policy import COMPARE_METRICS, check_applies, load_policy
    from .stages.compare import run_compare

    config = RunConfig(top_k=args.top_k, seed=args.seed, batch_size=args.batch_size, max_length=args.max_length,
                       pooling=args.pooling, progress=not args.no_progress, ablation=not args.no_ablation,
                       ablate_k=args.ablate_k, ablation_mode=args.ablation_mode, null_sets=args.null_sets,
                       ablation_texts=args.ablation_texts, cache_dir=args.cache)
    compare = CompareConfig(layers=args.layers, align=args.align, baseline_stride=args.baseline_stride,
                            memory_budget_mb=args.memory_budget, top_changed=args.top_changed,
                            audit=not args.no_audit)
    probesets = [] if args.no_audit else load_probesets(args.probeset or bundled_probeset_paths())
    policy = load_policy(args.policy, COMPARE_METRICS) if args.policy else None
    if policy is not None:
        if args.no_audit:
            raise AuditInputError("--policy: comparison policies check the audit diff; drop --no-audit")
        check_applies(policy, probesets, ablation=config.ablation, metrics=COMPARE_METRICS)
    for option, value in (("--out", args.out), ("--cache", args.cache)):
        if value and Path(value).exists() and not Path(value).is_dir():
            raise AuditInputError(f"{option}: {value} exists and is not a folder")
    corpus_path = Path(args.corpus) if args.corpus else REFERENCE_FILE
    try:
        corpus = load_reference(corpus_path)
    except AuditInputError as exc:
        raise AuditInputError(str(exc).replace("--reference", "--corpus")) from None
    loading = dict(device=args.device, allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code,
                   cache_dir=args.hf_cache_dir)
    model_a = _load_side(load_model, args.model_a, "--model-a", loading)
    model_b = _load_side(load_model, args.model_b, "--model-b", loading)
    result = to_json(run_compare(model_a, model_b, corpus, corpus_name=str(args.corpus or "bundled reference corpus"),
                                 corpus_sha256=sha256_file(corpus_path), probesets=probesets, config=config,
                                 compare=compare))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out) if args.out else REPORTS_DIR / f"compare-{model_a.slug}-{model_b.slug}-{stamp}"
    code = _publish(result, out, policy=policy, pdf=not args.no_pdf, fail_on_policy=args.fail_on_policy,
                    cards=args.cards)
    for layer in result["layers_a"]:
        line = (f"  L{layer['layer']}: {100 * layer['share_persistent']:.1f}% of A's neurons persist in B "
                f"(mean best r {layer['mean_r']:.3f}")
        if "mean_diagonal_r" in layer:
            line += f", same index r {layer['mean_diagonal_r']:.3f}, best match = same index " \
                    f"{100 * layer['same_index_share']:.1f}%"
        print(line + ")")
    for diff in result["probesets"]:
        print(f"  {diff['name']}: flagged A {diff['n_flagged_a']}, B {diff['n_flagged_b']}, kept "
              f"{diff['overlap']}, new in B {diff['became_flagged']}, mean |delta| {diff['mean_abs_delta']:.3f}")
    return code


def _load_side(load_model, spec: str, option: str, loading: dict):
    """Load one side of a comparison; an input error names the option it came from."""
    try:
        return load_model(spec, **loading)
    except AuditInputError as exc:
        raise AuditInputError(str(exc).replace("--model:", f"{option}:").replace("--model ", f"{option} ")) from None


def cmd_render(args: argparse.Namespace) -> int:
    from .results.io import load_any, to_json
    from .results.policy import COMPARE_METRICS, METRICS, load_policy

    loaded = load_any(args.results)  # validated against its published schema
    result = to_json(loaded)
    metrics = COMPARE_METRICS if result.get("kind") == "comparison" else METRICS
    policy = load_policy(args.policy, metrics) if args.policy else None
    return _publish(result, Path(args.out), policy=policy, pdf=not args.no_pdf, fail_on_policy=args.fail_on_policy)


def _publish(result: dict, out: Path, *, policy: dict | None, pdf: bool, fail_on_policy: bool,
             cards: int = 3) -> int:
    """Evaluate the policy, render, and write results.json or comparison.json, report.html (and report.pdf)
    atomically."""
    from .results.io import dumps, write_outputs
    from .results.policy import COMPARE_METRICS, METRICS, evaluate
    from .results.report import render_compare_html, render_html, render_pdf

    if out.exists() and not out.is_dir():
        raise AuditInputError(f"--out: {out} exists and is not a folder")
    stale = out / "report.pdf"
    if not pdf and stale.exists():
        stale.unlink()  # an old PDF beside new results would mislead
    comparison = result.get("kind") == "comparison"
    if policy is not None:
        result["policy"] = evaluate(policy, result, COMPARE_METRICS if comparison else METRICS)
    tick = time.perf_counter()
    html = render_compare_html(result, cards=cards) if comparison else render_html(result)
    name = "comparison.json" if comparison else "results.json"
    files: dict[str, str | bytes] = {name: dumps(result), "report.html": html}
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


COMMANDS = {"run": cmd_run, "compare": cmd_compare, "render": cmd_render, "schema": cmd_schema,
            "validate": cmd_validate, "import": cmd_import}


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
