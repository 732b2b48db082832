"""Command line: ``neuron-audit run | compare | render | schema | validate | import``.

Thin: parse, call the pipeline, write outputs.

Exit codes: 0 ok, 2 bad input (one line naming the file/field/option), 1 unexpected error,
3 a policy check failed under --fail-on-policy (or newly failed since --baseline under --fail-on-new),
130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from .errors import AuditInputError, AuditWarning

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_POLICY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
REPORTS_DIR = Path("reports")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error on one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise AuditInputError(re.sub(r"^argument (\S+?): (must )", r"\1 \2", message))


def _int_in(setting: str):
    """An argparse type for the integer setting ``setting`` of :class:`RunConfig`, with its range."""
    from .config import COMPARE_RANGES, EXECUTION_RANGES, INT_RANGES

    low, high = {**INT_RANGES, **EXECUTION_RANGES, **COMPARE_RANGES}[setting]

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an int in [{low}, {high}]; got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an int in [{low}, {high}]; got {value}")
        return value

    parse.__name__ = "int"
    return parse


def _size_in(setting: str):
    """An argparse type for a memory size setting: ``512MB``, ``4GB`` (``M``/``G``, ``MiB``/``GiB`` too) or a
    plain number of MB, in MiB, within the setting's range (``run`` and ``compare`` parse sizes alike)."""
    from .config import COMPARE_RANGES, INT_RANGES

    low, high = {**INT_RANGES, **COMPARE_RANGES}[setting]

    def parse(text: str) -> int:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:([MG])(?:i?B)?)?\s*", text, flags=re.IGNORECASE)
        value = None
        if match:
            value = int(float(match.group(1)) * (1024 if (match.group(2) or "M").upper() == "G" else 1))
        if value is None or not low <= value <= high:
            largest = f"{high >> 10}GB" if high >= 1024 else f"{high}MB"
            raise argparse.ArgumentTypeError(f"must be a size from {low}MB to {largest}, like 512MB, 4GB or 512 "
                                             f"(MB); got {text!r}")
        return value

    parse.__name__ = "size"
    return parse


def _add_scale_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--executor, --workers, --ray-address, --shard-size and --resume (see docs/scaling.md)."""
    scale = parser.add_argument_group("scale-out (see docs/scaling.md)")
    scale.add_argument("--executor", choices=("local", "ray"), default="local",
                       help=f"where the {what}: this process (default) or a Ray cluster")
    scale.add_argument("--workers", type=_int_in("workers"), metavar="N",
                       help="Ray workers (default: one per CPU, or per GPU, the cluster offers)")
    scale.add_argument("--ray-address", metavar="ADDR",
                       help="Ray cluster to join ('auto': the one 'ray start' made here; default: start a local one)")
    scale.add_argument("--shard-size", type=_int_in("shard_size"), metavar="TEXTS",
                       help="texts per shard (default 256 with --executor ray; local runs are unsharded unless given)")
    scale.add_argument("--resume", action="store_true",
                       help="continue an interrupted sharded run from the shard states it kept")


def _add_ci_options(parser: argparse.ArgumentParser, *, baseline: bool) -> None:
    """--junit and --sarif (policy checks for CI); for audits also --baseline and --fail-on-new."""
    ci = parser.add_argument_group("CI exports" + (" and regression against a baseline" if baseline else ""))
    ci.add_argument("--junit", metavar="FILE", help="also write the policy checks as JUnit XML (one test case per "
                    "check; a failure names the value and the threshold)")
    ci.add_argument("--sarif", metavar="FILE", help="also write the policy checks as SARIF 2.1.0 (one rule per check; "
                    "FAIL at level error, NOT EVALUATED at warning)")
    if baseline:
        ci.add_argument("--baseline", metavar="RESULTS.json", help="an earlier audit's results.json: report what "
                        "changed since (checks, output-level scores, flagged neurons)")
        ci.add_argument("--fail-on-new", action="store_true", help="exit with code 3 when a policy check fails "
                        "that did not fail in the baseline")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="neuron-audit", description="Audit a language model's MLP neurons with probe sets.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="audit a model with probe sets and write results.json + report.html")
    run.add_argument("--model", default="default",
                     help="'default' (all-MiniLM-L6-v2, bundled), 'smollm2' (SmolLM2-135M-Instruct, 4-bit GGUF, "
                          "bundled), 'gemma3' (gemma-3-270m, multilingual, 4-bit GGUF, bundled; Gemma Terms of Use), "
                          "a local model folder or .gguf file, or a Hugging Face id")
    run.add_argument("--probeset", nargs="+", action="extend", metavar="FILE",
                     help="probe-set YAML files; repeat the option or list several (default: all bundled)")
    run.add_argument("--out", metavar="DIR", help="output folder (default: reports/<model>-<UTC timestamp>/)")
    run.add_argument("--top-k", type=_int_in("top_k"), default=20, help="neurons reported per probe set (default 20)")
    run.add_argument("--seed", type=_int_in("seed"), default=0, help="seed for bootstrap and controls (default 0)")
    run.add_argument("--device", default="auto", help="auto | cpu | cuda (default auto)")
    run.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                     help="weights' dtype (default auto: bfloat16 on CUDA, float32 on CPU)")
    run.add_argument("--device-map", choices=("auto",), help="spread a model larger than one device over all "
                     "visible devices (accelerate)")
    run.add_argument("--gguf-cache", metavar="DIR", help="where dequantised copies of GGUF files are kept for "
                     "fast reloads ('off': none; default: the user cache folder, or $NEURON_AUDIT_CACHE_DIR)")
    run.add_argument("--batch-size", type=_int_in("batch_size"), default=32, help="texts per forward pass (default 32)")
    run.add_argument("--max-length", type=_int_in("max_length"), default=128, help="tokens per text before truncation")
    run.add_argument("--pooling", choices=("max", "mean"), default="max", help="per-text pooling (default max)")
    run.add_argument("--ablate-k", type=_int_in("ablate_k"), default=10,
                     help="neurons ablated per probe set (default 10)")
    run.add_argument("--ablate-per-layer", type=_int_in("ablate_per_layer"), metavar="K",
                     help="ablate the top K of each layer instead")
    run.add_argument("--ablation-mode", choices=("zero", "mean", "dampen"), default="mean",
                     help="how flagged neurons are ablated (default mean: their mean on negative texts)")
    run.add_argument("--null-sets", type=_int_in("null_sets"), default=20,
                     help="random neuron sets of the layer-matched null shown beside the verdict (default 20; the "
                          "verdict's activation-matched null draws as many as the corrected test needs)")
    run.add_argument("--dose-max", type=_int_in("dose_max"), default=100, metavar="K",
                     help="largest k of the dose-response ladder 1, 3, 10, 30, ... (default 100); the doses are "
                          "tested from the largest down and each costs up to ⌈S/0.05⌉ random sets (S: probe sets)")
    run.add_argument("--ablation-texts", type=_int_in("ablation_texts"), default=25,
                     help="texts per side (or items) evaluated under ablation (default 25)")
    run.add_argument("--reference", metavar="FILE", help="general reference corpus, one text per line "
                     "(default: the bundled everyday sentences)")
    run.add_argument("--no-ablation", action="store_true", help="skip ablation validation")
    run.add_argument("--no-explain", action="store_true", help="skip explanations (top tokens, N2G graphs)")
    run.add_argument("--no-neuron-classes", action="store_true",
                     help="skip classifying every neuron through W_out·W_U (causal LMs; minutes with a large "
                          "vocabulary such as gemma3's 262,144 tokens)")
    run.add_argument("--corpus", metavar="FILE", help="more general text for explanations: one text per line, "
                     "or JSONL with a 'text' field (streamed, any size)")
    run.add_argument("--word-vectors", metavar="FILE", help="fastText .bin or .vec vectors for word similarity "
                     "(default: the audited model's own input embeddings)")
    run.add_argument("--policy", metavar="FILE", help="policy with PASS/FAIL thresholds (YAML); default: the shipped "
                     "default policy (audit/data/policies/default.yaml); 'none': no checks")
    run.add_argument("--fail-on-policy", action="store_true", help="exit with code 3 when a policy check fails")
    run.add_argument("--reviewer", metavar="NAME", help="fill the report's sign-off block with this reviewer's name "
                     "(default: left blank for ink)")
    run.add_argument("--organisation", metavar="NAME", help="the reviewer's organisation, for the sign-off block")
    run.add_argument("--no-pdf", action="store_true", help="write report.html only, not report.pdf")
    run.add_argument("--hf-cache-dir", metavar="DIR", help="Hugging Face cache to load --model ids from")
    run.add_argument("--cache", metavar="DIR", help="keep harvests here and reuse them when model, texts and "
                     "settings match (faster re-runs)")
    run.add_argument("--memory-budget", type=_size_in("memory_budget_mb"), default=2048, metavar="SIZE",
                     help="keep per-text aggregates in RAM up to this size, beyond it in a memory-mapped temporary "
                          "file (e.g. 512MB, 4GB; default 2GB)")
    run.add_argument("--allow-pickle", action="store_true", help="allow loading pickle (.bin) checkpoints")
    run.add_argument("--trust-remote-code", action="store_true", help="allow a model's own Python code to run")
    run.add_argument("--allow-weights", nargs="+", action="extend", default=[], metavar="PATTERN",
                     help="accept missing, unexpected or mis-shaped checkpoint tensors whose names match these "
                          "patterns (e.g. 'lm_head.*' for a tied head); recorded in the report's provenance")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_scale_options(run, "harvests run")
    _add_ci_options(run, baseline=True)

    render = commands.add_parser("render", help="re-render report.html/report.pdf from a results.json or a "
                                 "comparison.json, no model")
    render.add_argument("results", metavar="RESULTS.json")
    render.add_argument("--out", required=True, metavar="DIR")
    render.add_argument("--policy", metavar="FILE", help="evaluate (or re-evaluate) policy checks on these results "
                        "(default: keep the file's checks, or apply the default policy when it has none; 'none': "
                        "drop them)")
    render.add_argument("--fail-on-policy", action="store_true", help="exit with code 3 when a policy check fails")
    render.add_argument("--no-pdf", action="store_true", help="write report.html only")
    render.add_argument("--reviewer", metavar="NAME", help="fill the sign-off block with this reviewer's name")
    render.add_argument("--organisation", metavar="NAME", help="the reviewer's organisation, for the sign-off block")
    render.add_argument("--name-a", metavar="NAME", help="comparisons: the name model A goes by in the report")
    render.add_argument("--name-b", metavar="NAME", help="comparisons: the name model B goes by in the report")
    _add_ci_options(render, baseline=True)

    compare = commands.add_parser("compare", help="compare two checkpoints neuron by neuron and diff their audits")
    compare.add_argument("--model-a", required=True, metavar="A", help="the reference model: 'default', a local "
                         "model folder, or a Hugging Face id")
    compare.add_argument("--model-b", required=True, metavar="B", help="the model compared against A (any "
                         "supported architecture and size)")
    compare.add_argument("--probeset", nargs="+", action="extend", metavar="FILE",
                         help="probe-set YAML files to audit in both models; repeat the option or list several "
                              "(default: all bundled)")
    compare.add_argument("--no-audit", action="store_true", help="only match neurons; no audits, no audit diff")
    compare.add_argument("--corpus", metavar="FILE", help="texts to correlate neurons on, one per line "
                         "(default: the bundled everyday reference sentences)")
    compare.add_argument("--out", metavar="DIR", help="output folder (default: reports/compare-<A>-<B>-<UTC time>/)")
    compare.add_argument("--layers", choices=("auto", "same", "depth", "all"), default="auto",
                         help="layer pairs to correlate: same index, nearest relative depth, or all pairs "
                              "(default auto: same when the depths match, else depth)")
    compare.add_argument("--align", choices=("auto", "tokens", "texts"), default="auto",
                         help="samples: tokens (same tokenizer) or per-text means (default auto)")
    compare.add_argument("--baseline-stride", type=_int_in("baseline_stride"), default=8,
                         help="the rotation baseline estimates its mixtures' variances on every n-th token of "
                              "each text (default 8)")
    compare.add_argument("--precision", choices=("bfloat16", "float32"), default="bfloat16",
                         help="samples rounded to this before their products, accumulated in float32 then float64 "
                              "(default bfloat16: 2-4x faster products where the CPU has bfloat16 units, r within "
                              "~1e-3 of float32, far inside its sampling error)")
    compare.add_argument("--memory-budget", type=_size_in("compare_memory_budget_mb"), default=2048, metavar="SIZE",
                         help="largest correlation state held at once, e.g. 512MB or 2GB (a plain number is MB); "
                              "more layer pairs take more passes (default 2GB)")
    compare.add_argument("--top-changed", type=_int_in("top_changed"), default=20, help="neurons in the changed table")
    compare.add_argument("--cards", type=_int_in("cards"), default=3, help="matched pairs' cards per probe set")
    compare.add_argument("--name-a", metavar="NAME", help="the name model A goes by in the report (default: its "
                         "config's model name or its package)")
    compare.add_argument("--name-b", metavar="NAME", help="the name model B goes by in the report")
    for option in ("--top-k", "--seed", "--device", "--batch-size", "--max-length", "--pooling", "--ablate-k",
                   "--ablation-mode", "--null-sets", "--ablation-texts", "--dose-max", "--no-ablation", "--policy",
                   "--fail-on-policy", "--no-pdf", "--hf-cache-dir", "--cache", "--allow-pickle",
                   "--trust-remote-code", "--no-progress", "--reviewer", "--organisation"):
        action = next(a for a in run._actions if option in a.option_strings)
        compare._add_action(action)
    _add_scale_options(compare, "correlation and the audits' harvests run (workers hold both models)")
    _add_ci_options(compare, baseline=False)

    explain = commands.add_parser("explain", help="explain one neuron from general text (top tokens, graph)")
    explain.add_argument("--model", default="default", help="default | local folder | Hugging Face id")
    explain.add_argument("--neuron", required=True, metavar="L2.N693", help="the neuron, as reports name it")
    explain.add_argument("--corpus", metavar="FILE", help="text to search: one text per line, or JSONL with a "
                         "'text' field (streamed, any size); the reference corpus is always included")
    explain.add_argument("--reference", metavar="FILE", help="general reference corpus (default: the bundled one)")
    explain.add_argument("--word-vectors", metavar="FILE", help="fastText .bin or .vec vectors")
    explain.add_argument("--top", type=int, default=20, metavar="K", help="top contexts to learn from (default 20)")
    explain.add_argument("--json", metavar="FILE", help="also write the explanation as JSON here")
    explain.add_argument("--device", default="auto")
    explain.add_argument("--hf-cache-dir", metavar="DIR")
    explain.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _add_scale_options(explain, "corpus is searched (--resume keeps shard states beside --json)")

    search = commands.add_parser("search", help="which reported neurons activate on or depend on a token")
    search.add_argument("results", metavar="RESULTS.json")
    search.add_argument("--token", required=True)

    schema = commands.add_parser("schema", help="print the JSON Schema of results.json (schema_version 1)")
    schema.add_argument("--compare", action="store_true", help="the schema of comparison.json instead")

    validate = commands.add_parser("validate", help="check probe-set YAML files")
    validate.add_argument("files", nargs="+", metavar="FILE")

    importer = commands.add_parser("import", help="convert a bias benchmark into a probe-set YAML file")
    importer.add_argument("format", choices=("crows-pairs", "winobias", "stereoset"))
    importer.add_argument("source", metavar="FILE_OR_DIR",
                          help="CrowS-Pairs CSV file, WinoBias data folder, or StereoSet dev/test JSON file")
    importer.add_argument("-o", "--output", required=True, metavar="OUT.yaml")
    importer.add_argument("--split-by-bias-type", action="store_true",
                          help="CrowS-Pairs: one probe set per bias type instead of a marker per item")
    importer.add_argument("--grouping", choices=("stereotype", "gender", "both"), default="stereotype",
                          help="WinoBias: group versions as pro/anti (stereotype), female/male (gender), or write "
                               "both sets (default: stereotype)")
    return parser


def cmd_schema(args: argparse.Namespace) -> int:
    from .results.schema import comparison_schema, results_schema

    print(json.dumps(comparison_schema() if args.compare else results_schema(), indent=2))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from .probes.language import check_languages
    from .probes.probeset import load_probesets

    for probeset in load_probesets(args.files):
        count = (f"{len(probeset.positive)} positive / {len(probeset.negative)} negative"
                 if probeset.kind == "concept" else f"{len(probeset.items)} items × {len(probeset.groups)} groups")
        print(f"ok  {probeset.path}: {probeset.name} ({probeset.kind}, {count})")
        checked = check_languages(probeset)
        if checked is not None:
            unchecked = f"; groups not checked: {', '.join(checked['unchecked_groups'])}" \
                if checked["unchecked_groups"] else ""
            print(f"    language check (fastText lid.176): {checked['checked']} texts, "
                  f"{len(checked['mismatches'])} look like another language{unchecked}")
            for x in checked["mismatches"]:
                print(f"    {x['item']} [{x['group']}]: looks like {x['detected']} (p {x['probability']:.2f}): "
                      f"{x['text'][:80]}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from .config import RunConfig
    from .model.loading import load_model
    from .probes.probeset import bundled_probeset_paths, load_probesets
    from .results.io import to_json
    from .results.outdir import OutputLock
    from .probes.reference import REFERENCE_FILE
    from .provenance import input_file
    from .results.policy import check_applies
    from .stages.audit import run_audit

    _check_policy_flags(args)
    config = RunConfig(top_k=args.top_k, seed=args.seed, batch_size=args.batch_size,
                       max_length=args.max_length, pooling=args.pooling, progress=not args.no_progress,
                       ablation=not args.no_ablation, ablate_k=args.ablate_k, ablate_per_layer=args.ablate_per_layer,
                       ablation_mode=args.ablation_mode, null_sets=args.null_sets,
                       ablation_texts=args.ablation_texts, dose_max=args.dose_max, reference=args.reference,
                       cache_dir=args.cache,
                       memory_budget_mb=args.memory_budget,
                       explain=not args.no_explain, corpus=args.corpus, word_vectors=args.word_vectors,
                       neuron_classes=not args.no_neuron_classes)
    probesets = load_probesets(args.probeset or bundled_probeset_paths())
    policy = _policy(args.policy, comparison=False)
    if policy is not None:
        check_applies(policy, probesets, ablation=config.ablation)  # before the model loads, not after the run
    out = _check_out_and_cache(args)  # writable, and not another run's, before any model loads
    ci = _prepare_ci(args, checks=policy is not None, out=out, probesets=_identities(probesets))
    if args.reference:
        from .probes.reference import load_reference

        load_reference(args.reference)  # fail on a bad corpus before the model loads
    if args.corpus:
        from .probes.corpus import check_corpus

        check_corpus(args.corpus)
    if args.word_vectors:
        from .model.similarity import fasttext_vectors

        fasttext_vectors(args.word_vectors)  # a bad vectors file fails before the audit, not after it
    _check_scale_options(args)
    with OutputLock(out) if out is not None else contextlib.nullcontext():
        model = load_model(args.model, device=args.device, allow_pickle=args.allow_pickle,
                           trust_remote_code=args.trust_remote_code, cache_dir=args.hf_cache_dir,
                           allow_weights=args.allow_weights, dtype=args.dtype, device_map=args.device_map,
                           gguf_cache=args.gguf_cache)
        executor = _executor(args, [model], [args.model])
        state = None
        try:
            if out is not None:  # shard states live in --out, so a killed run can --resume
                manifest = {"weights_sha256": model.weights_sha256, "settings": config.to_dict(),
                            "probesets": _identities(probesets)}
                from .provenance import sha256_file

                if args.corpus:
                    manifest["corpus"] = sha256_file(args.corpus)
                manifest["reference"] = sha256_file(args.reference) if args.reference else "bundled"
                state = _state(args, executor, out, manifest)
            result = to_json(run_audit(model, probesets, config, executor=executor, state=state))
        except AuditInputError:
            _discard_fresh(state)
            raise
        finally:
            executor.close()
        inputs = {"reference": input_file(args.reference) if args.reference
                  else input_file(REFERENCE_FILE, "bundled reference corpus (audit/data/reference.txt)")}
        if args.corpus:
            inputs["corpus"] = input_file(args.corpus)
        _stamp_run(result, args, inputs)
        try:
            code = _publish_new(out, f"{model.slug}", result, policy=policy, pdf=not args.no_pdf,
                                fail_on_policy=args.fail_on_policy, ci=ci)
        except AuditInputError:
            _discard_fresh(state)
            raise
        if state is not None:
            state.remove()  # the outputs are written: the shard states are no longer needed
    for section in result["probesets"]:
        top = ", ".join(f"{n['name']} (AUROC {n['auroc']:.3f})" for n in section.get("neurons", [])[:3])
        if top:
            print(f"  {section['name']}: {section['summary']['n_significant']} selective neurons; top {top}")
        if "disparity" in section:
            counts = section["disparity"]["counts"]["q_and_effect"]["per_group"]
            print(f"  {section['name']}: group-selective neurons " + ", ".join(f"{g} {n}" for g, n in counts.items()))
            for row in section["disparity"]["output"].get("preference", {}).get("rows", [])[:1]:
                low, high = row["ci95"]
                print(f"    the model prefers the {row['group']} version over {row['versus']} on "
                      f"{row['share']:.3f} of {row['n_items']} items (95% CI {low:.3f} to {high:.3f}; 0.5 = none)")
        ablation = section.get("ablation")
        if ablation and "effect" in ablation:
            z = "n/a" if ablation["z"] is None else f"{ablation['z']:.1f}"
            tests = ablation.get("p_value_meaning") or "share of random sets with at least as large an effect"
            print(f"    ablating {len(ablation['neurons'])} neuron{'s' if len(ablation['neurons']) != 1 else ''} "
                  f"({ablation['mode']}): effect {ablation['effect']:.4g} vs null {ablation['null']['mean']:.4g}, "
                  f"z {z}, p {ablation['p_value']:.3f} ({tests})")
            if "verdict" in ablation:
                print(f"    vs activation-matched random sets ({ablation['n_null_sets']} drawn): p "
                      f"{ablation['p_value_matched']:.4g}, corrected over {ablation['n_tests']} tests "
                      f"{'-' if ablation['p_corrected'] is None else format(ablation['p_corrected'], '.4g')}: "
                      f"{ablation['verdict']}; smallest validated k: "
                      f"{ablation['smallest_validated_k']}")
    return code


def _check_out_and_cache(args: argparse.Namespace) -> Path | None:
    """--out (or the reports folder it defaults into) and --cache, checked before any model loads."""
    from .results.outdir import check_creatable, check_out

    out = Path(args.out) if args.out else None
    if out is not None:
        check_out(out, "--out")
    else:
        check_creatable(REPORTS_DIR, "--out")
    if args.cache and Path(args.cache).exists() and not Path(args.cache).is_dir():
        raise AuditInputError(f"--cache: {args.cache} exists and is not a folder")
    return out


def _publish_new(out: Path | None, stem: str, result: dict, **options: Any) -> int:
    """:func:`_publish` into ``out``, or into a new timestamped folder under reports/, locked while written."""
    from .results.outdir import OutputLock, check_out

    if out is not None:
        return _publish(result, out, **options)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = REPORTS_DIR / f"{stem}-{stamp}"
    with OutputLock(out):
        check_out(out)
        return _publish(result, out, **options)


def _check_scale_options(args: argparse.Namespace, keeper: str = "--out") -> None:
    """Scale-out options that contradict each other are input errors, found before the model loads.
    ``keeper`` is the option naming where shard states are kept (the folder an interrupted run resumes)."""
    if args.executor == "local" and (args.workers or args.ray_address):
        option = "--workers" if args.workers else "--ray-address"
        raise AuditInputError(f"{option}: only applies with --executor ray")
    if args.resume and not getattr(args, keeper.lstrip("-").replace("-", "_")):
        raise AuditInputError(f"--resume: needs {keeper}, where the interrupted run kept its shard states")
    if args.resume and args.executor == "local" and args.shard_size is None:
        raise AuditInputError("--resume: local runs keep shard states only with --shard-size; give the same "
                              "--shard-size as the interrupted run")


def _executor(args: argparse.Namespace, models: Sequence[Any], specs: Sequence[str]) -> Any:
    """The executor the options ask for (Ray is imported only for --executor ray); Ray workers load
    ``specs`` (the models' command-line names) with this command's loading options."""
    from .execution.executor import Executor

    if args.executor == "local":
        return Executor(shard_size=args.shard_size, progress=not args.no_progress)
    from .execution.ray_executor import ModelSpec, RayExecutor

    def spec(name: str) -> ModelSpec:
        if name not in ("default", "smollm2") and Path(name).expanduser().exists():
            name = str(Path(name).expanduser().resolve())  # workers resolve the same path, not their own cwd
        return ModelSpec(model=name, allow_pickle=getattr(args, "allow_pickle", False),
                         trust_remote_code=getattr(args, "trust_remote_code", False), cache_dir=args.hf_cache_dir,
                         allow_weights=tuple(getattr(args, "allow_weights", ())), dtype=getattr(args, "dtype", "auto"))

    return RayExecutor([spec(name) for name in specs], expected_sha256=[m.weights_sha256 for m in models],
                       workers=args.workers, address=args.ray_address, shard_size=args.shard_size or 256,
                       progress=not args.no_progress)


def _identities(probesets: Sequence[Any]) -> list[list[str]]:
    """Each probe set's name and content hash, as a resumed run's manifest compares them."""
    return [[p.name, p.sha256] for p in probesets]


def _state(args: argparse.Namespace, executor: Any, folder: Path, manifest: dict[str, Any], *,
           name: str | None = None) -> Any:
    """The shard-state store under ``folder`` (sharded runs only), checked against --resume."""
    if executor.shard_size is None:
        return None
    from .execution.state import STATE_DIR, StateStore

    manifest = {**manifest, "execution": {"shard_size": executor.shard_size}}
    store = StateStore(folder, manifest, resume=args.resume, name=name or STATE_DIR)
    if store.discarded:
        print(f"neuron-audit: {store.root}: discarded {store.discarded} shard states of an interrupted run "
              "(--resume continues from them)", file=sys.stderr)
    return store


def _discard_fresh(state: Any) -> None:
    """Remove the shard-state folder this run created when it stops on an input error (exit 2): nothing is
    left to resume. States of a resumed run, or of one interrupted or killed, stay for --resume."""
    if state is not None and state.fresh:
        state.remove()


def cmd_compare(args: argparse.Namespace) -> int:
    from .config import CompareConfig, RunConfig
    from .model.loading import load_model
    from .probes.probeset import bundled_probeset_paths, load_probesets
    from .probes.reference import REFERENCE_FILE, load_reference
    from .provenance import input_file, sha256_file
    from .results.io import to_json
    from .results.outdir import OutputLock
    from .results.policy import COMPARE_METRICS, check_applies
    from .stages.compare import run_compare

    _check_policy_flags(args)
    config = RunConfig(top_k=args.top_k, seed=args.seed, batch_size=args.batch_size, max_length=args.max_length,
                       pooling=args.pooling, progress=not args.no_progress, ablation=not args.no_ablation,
                       ablate_k=args.ablate_k, ablation_mode=args.ablation_mode, null_sets=args.null_sets,
                       ablation_texts=args.ablation_texts, dose_max=args.dose_max, cache_dir=args.cache)
    compare = CompareConfig(layers=args.layers, align=args.align, baseline_stride=args.baseline_stride,
                            precision=args.precision,
                            memory_budget_mb=args.memory_budget, top_changed=args.top_changed,
                            audit=not args.no_audit)
    probesets = [] if args.no_audit else load_probesets(args.probeset or bundled_probeset_paths())
    policy = _policy(args.policy, comparison=True)
    if policy is not None and policy.get("default") and args.no_audit:
        policy = None  # the default checks read the audit diff, which --no-audit leaves out
    if policy is not None:
        if args.no_audit:
            raise AuditInputError("--policy: comparison policies check the audit diff; drop --no-audit")
        check_applies(policy, probesets, ablation=config.ablation, metrics=COMPARE_METRICS)
    out = _check_out_and_cache(args)  # writable, and not another run's, before any model loads
    ci = _prepare_ci(args, checks=policy is not None, out=out)
    _check_scale_options(args)
    corpus_path = Path(args.corpus) if args.corpus else REFERENCE_FILE
    try:
        corpus = load_reference(corpus_path, what="corpus file")
    except AuditInputError as exc:
        raise AuditInputError(f"--corpus: {exc}".replace("--corpus: --reference: ", "--corpus: ")) from None
    with OutputLock(out) if out is not None else contextlib.nullcontext():
        loading = dict(device=args.device, allow_pickle=args.allow_pickle, trust_remote_code=args.trust_remote_code,
                       cache_dir=args.hf_cache_dir)
        model_a = _load_side(load_model, args.model_a, "--model-a", loading)
        model_b = _load_side(load_model, args.model_b, "--model-b", loading)
        if policy is not None and model_a.kind != model_b.kind:  # before the work, not when publishing it
            for i, check in enumerate(policy["checks"]):
                if check["metric"] == "output_disparity_change":
                    raise AuditInputError(f"{policy['file']}: checks[{i}].metric: output_disparity_change needs "
                                          f"models of the same kind; A is {model_a.kind}, B is {model_b.kind}")
        corpus_sha256 = sha256_file(corpus_path)
        executor = _executor(args, [model_a, model_b], [args.model_a, args.model_b])
        state = None
        try:
            if out is not None:  # shard states live in --out, so a killed comparison can --resume
                state = _state(args, executor, out, {
                    "weights_sha256": [model_a.weights_sha256, model_b.weights_sha256], "corpus": corpus_sha256,
                    "settings": {**config.to_dict(), "compare": compare.to_dict()},
                    "probesets": _identities(probesets)})
            result = to_json(run_compare(model_a, model_b, corpus,
                                         corpus_name=str(args.corpus or "bundled reference corpus"),
                                         corpus_sha256=corpus_sha256, probesets=probesets, config=config,
                                         compare=compare, executor=executor, state=state))
        except AuditInputError:
            _discard_fresh(state)
            raise
        finally:
            executor.close()
        _stamp_run(result, args, {"corpus": input_file(corpus_path, None if args.corpus else
                                                       "bundled reference corpus (audit/data/reference.txt)")})
        try:
            code = _publish_new(out, f"compare-{model_a.slug}-{model_b.slug}", result, policy=policy,
                                pdf=not args.no_pdf, fail_on_policy=args.fail_on_policy, cards=args.cards, ci=ci)
        except AuditInputError:
            _discard_fresh(state)
            raise
        if state is not None:
            state.remove()
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
    from .results.outdir import OutputLock, check_out
    _check_policy_flags(args)
    out = Path(args.out)
    check_out(out, "--out")
    result = to_json(load_any(args.results))  # validated against its published schema
    comparison = result.get("kind") == "comparison"
    if not comparison and (args.name_a or args.name_b):
        raise AuditInputError("--name-a/--name-b: only for a comparison.json; this file is an audit's results")
    if args.baseline and comparison:
        raise AuditInputError("--baseline: applies to an audit's results.json, not to a comparison.json")
    if args.policy is None and "policy" in result:
        policy = None  # keep the checks the file holds
    else:
        policy = _policy(args.policy, comparison=comparison)
        result.pop("policy", None)
    _stamp_run(result, args, None)
    ci = _prepare_ci(args, checks=policy is not None or "policy" in result, out=out,
                     probesets=[(s["name"], s["sha256"]) for s in result["probesets"]] if args.baseline else None)
    if policy is not None and not args.baseline and result.pop("baseline", None) is not None:
        warnings.warn("the stored 'Since the baseline' comparison was made under the former policy and is left out; "
                      "give --baseline again to redo it", AuditWarning)
    with OutputLock(out):
        return _publish(result, out, policy=policy, pdf=not args.no_pdf, fail_on_policy=args.fail_on_policy, ci=ci)


def _check_policy_flags(args: argparse.Namespace) -> None:
    if args.fail_on_policy and _no_policy(args.policy):
        raise AuditInputError("--fail-on-policy: needs a policy (drop --policy none, or give --policy FILE); "
                              "there are no checks to fail on")


def _no_policy(option: str | None) -> bool:
    return option is not None and option.strip().lower() == "none"


def _policy(option: str | None, *, comparison: bool) -> dict | None:
    """--policy: a file, 'none' (no checks), or absent (the shipped default policy)."""
    from .results.policy import COMPARE_METRICS, METRICS, default_policy, load_policy

    if _no_policy(option):
        return None
    if option is None:
        return default_policy(comparison)
    return load_policy(option, COMPARE_METRICS if comparison else METRICS)


def _stamp_run(result: dict, args: argparse.Namespace, inputs: dict | None) -> None:
    """Record how to reproduce the run (command line, version, commit, input files' hashes), unless re-rendering,
    and the sign-off and display names given on this command line."""
    from .provenance import run_identity

    run = result["run"]
    if inputs is not None:
        run.update(run_identity(getattr(args, "argv", None) or sys.argv[1:]))
        run["inputs"] = inputs
    signoff = {key: value for key, value in (("reviewer", args.reviewer), ("organisation", args.organisation))
               if value}
    if signoff:
        run["signoff"] = signoff
    names = {key: value for key, value in (("a", getattr(args, "name_a", None)), ("b", getattr(args, "name_b", None)))
             if value}
    if names:
        run["names"] = {**run.get("names", {}), **names}


def _publish(result: dict, out: Path, *, policy: dict | None, pdf: bool, fail_on_policy: bool,
             cards: int = 3, ci: dict | None = None) -> int:
    """Evaluate the policy, render, and replace the output folder with results.json (or comparison.json),
    report.html (and report.pdf) as one unit; nothing in ``out`` changes unless every file was produced."""
    from .results.io import dumps, write_outputs
    from .results.policy import COMPARE_METRICS, METRICS, evaluate
    from .results.report import render_compare_html, render_html, render_pdf

    comparison = result.get("kind") == "comparison"
    if policy is not None:
        result["policy"] = evaluate(policy, result, COMPARE_METRICS if comparison else METRICS)
    _add_baseline(result, ci)
    tick = time.perf_counter()
    html = render_compare_html(result, cards=cards) if comparison else render_html(result)
    name = "comparison.json" if comparison else "results.json"
    files: dict[str, str | bytes] = {name: dumps(result), "report.html": html}
    if pdf:
        files["report.pdf"] = render_pdf(html)
    write_outputs(out, files)
    print(f"wrote {', '.join(str(out / name) for name in files)} (rendering {time.perf_counter() - tick:.1f} s)")
    new_failures = _finish_ci(result, out / name, ci)
    if "policy" in result:
        for check in result["policy"]["checks"]:
            value = "" if check["value"] is None else f" (value {check['value']:.4g})"
            why = f" ({check['reason']})" if check.get("reason") else ""
            print(f"  policy {check['verdict']}: {check['name']}{value}{why}")
        if fail_on_policy and not result["policy"]["passed"]:
            return EXIT_POLICY
    return EXIT_POLICY if new_failures else EXIT_OK


def _prepare_ci(args: argparse.Namespace, *, checks: bool, out: Path | None,
                probesets: Sequence[tuple[str, str]] | list[list[str]] | None = None) -> dict[str, Any] | None:
    """--junit, --sarif, --baseline and --fail-on-new checked before any work: export paths writable and
    outside --out, checks to export, and the baseline read, validated, and sharing a probe set with
    ``probesets`` (name, sha256)."""
    from .results.outdir import check_out_file

    baseline_given, fail_on_new = getattr(args, "baseline", None), getattr(args, "fail_on_new", False)
    if not (args.junit or args.sarif or baseline_given or fail_on_new):
        return None
    for option, given in (("--junit", args.junit), ("--sarif", args.sarif)):
        if given is None:
            continue
        if out is not None and out.resolve() in Path(given).resolve().parents:
            raise AuditInputError(f"{option}: {given} is inside --out {out}, which is replaced as a whole; "
                                  "write it elsewhere")
        check_out_file(given, option)
        if not checks:
            raise AuditInputError(f"{option}: there are no policy checks to export; give --policy FILE")
    if args.junit and args.sarif and Path(args.junit).resolve() == Path(args.sarif).resolve():
        raise AuditInputError(f"--sarif: {args.sarif} is also the --junit file; give two different files")
    if fail_on_new and not baseline_given:
        raise AuditInputError("--fail-on-new: needs --baseline RESULTS.json (there is nothing to be new against)")
    if fail_on_new and not checks:
        raise AuditInputError("--fail-on-new: needs --policy FILE (there are no checks to fail on)")
    baseline = None
    if baseline_given:
        from .results.baseline import compared_probesets, probeset_identities

        baseline = _read_baseline(baseline_given)
        if probesets is not None:  # refuse before the audit when there is nothing to compare
            compared_probesets(probeset_identities(baseline["result"]), [tuple(p) for p in probesets],
                               where=f"--baseline: {baseline_given}")
    return {"junit": args.junit, "sarif": args.sarif, "baseline": baseline, "fail_on_new": fail_on_new}


def _read_baseline(given: str) -> dict[str, Any]:
    """The --baseline results.json through the validated results loader (the one place it is read), with the
    sha256 of its bytes."""
    from .provenance import sha256_file
    from .results.io import load_results, to_json

    try:
        result = to_json(load_results(given))
    except AuditInputError as exc:
        raise AuditInputError(f"--baseline: {exc}") from None
    return {"path": given, "sha256": sha256_file(given), "result": result}


def _add_baseline(result: dict, ci: dict | None) -> None:
    """The ``baseline`` block, computed after the policy is evaluated (its checks are compared)."""
    if ci is None or ci["baseline"] is None:
        return
    from .results.baseline import diff_baseline

    baseline = ci["baseline"]
    result["baseline"] = diff_baseline(baseline["result"], result, path=baseline["path"], sha256=baseline["sha256"])


def _finish_ci(result: dict, results_file: Path, ci: dict | None) -> list[str]:
    """Write the exports once the output folder is in place, print what changed since the baseline, and
    return the checks that newly fail when --fail-on-new asks for them."""
    if ci is None:
        return []
    from .results.baseline import newly_failing
    from .results.exports import write_exports

    for path in write_exports(result, results_file, junit=ci["junit"], sarif=ci["sarif"]):
        print(f"wrote {path}")
    if "baseline" in result:
        b = result["baseline"]
        changed = [p["name"] for p in b["compared_probesets"] if p["status"] == "changed"]
        print(f"  since the baseline {b['path']}: {len(b['checks']['newly_failing'])} check(s) newly fail, "
              f"{len(b['checks']['newly_passing'])} newly pass; compared "
              f"{', '.join(p['name'] for p in b['compared_probesets'] if p['status'] in ('same', 'changed'))}"
              + (f" (changed content: {', '.join(changed)})" if changed else ""))
        for name in b["checks"]["newly_failing"]:
            print(f"    newly failing: {name}")
    return newly_failing(result) if ci["fail_on_new"] else []


def cmd_import(args: argparse.Namespace) -> int:
    from .probes.crows_pairs import import_crows_pairs
    from .probes.export import to_yaml
    from .probes.stereoset import import_stereoset
    from .probes.winobias import import_winobias
    from .results.outdir import check_out_file, write_file

    output = Path(args.output)
    check_out_file(args.output, "--output", suffix=" ending in .yaml")
    if args.format == "crows-pairs":
        documents = import_crows_pairs(args.source, split=args.split_by_bias_type)
    elif args.format == "stereoset":
        documents = import_stereoset(args.source)
    else:
        documents = import_winobias(args.source, grouping=args.grouping)
    with warnings.catch_warnings():  # the importer has already named the rows; the items would repeat it
        warnings.simplefilter("ignore", AuditWarning)
        text = to_yaml(documents, source=args.source)
    try:
        write_file(output, text)
    except OSError as exc:
        raise AuditInputError(f"--output: cannot write {output} ({exc.strerror or exc})") from None
    items = sum(len(d["items"]) for d in documents)
    print(f"wrote {output}: {len(documents)} probe set(s), {items} items")
    for document in documents:
        flagged = [i["id"] for i in document["items"] if i.get("meta", {}).get("minimal") is False]
        if flagged:
            print(f"  {document['name']}: {len(flagged)} item(s) differ in more than the swapped words "
                  f"(meta.minimal: false), e.g. {', '.join(flagged[:3])}")
    return EXIT_OK


NEURON = re.compile(r"^L(\d+)\.N(\d+)$")


def cmd_explain(args: argparse.Namespace) -> int:
    from itertools import chain

    from .model.contexts import keyed
    from .model.loading import load_model
    from .model.similarity import fasttext_vectors, word_vectors
    from .probes.corpus import check_corpus, iter_corpus
    from .probes.reference import load_reference
    from .provenance import sha256_file
    from .results.outdir import check_out_file, write_file
    from .stages.explain import explain_one

    match = NEURON.match(args.neuron.strip())
    if match is None:
        raise AuditInputError(f"--neuron: expected a name like L2.N693, got {args.neuron!r}")
    if not 2 <= args.top <= 1000:
        raise AuditInputError(f"--top: expected an int in [2, 1000], got {args.top}")
    if args.corpus:
        check_corpus(args.corpus)
    if args.word_vectors:
        fasttext_vectors(args.word_vectors)
    _check_scale_options(args, keeper="--json")
    if args.json:
        check_out_file(args.json, "--json")
    reference = load_reference(args.reference)
    model = load_model(args.model, device=args.device, cache_dir=args.hf_cache_dir)
    general = keyed(reference, "reference")
    if args.corpus:
        general = chain(general, iter_corpus(args.corpus))
    layer, neuron = int(match[1]), int(match[2])
    executor = _executor(args, [model], [args.model])
    state = job = None
    try:
        if args.json:  # shard states live beside --json, so a killed search can --resume
            json_path = Path(args.json)
            state = _state(args, executor, json_path.parent, {
                "weights_sha256": model.weights_sha256, "corpus": sha256_file(args.corpus) if args.corpus else None,
                "settings": {"neuron": [layer, neuron], "top": args.top, "reference": sha256_file(
                    args.reference) if args.reference else "bundled"}}, name=f".{json_path.name}.state")
            job = state.job("contexts") if state is not None else None
        record = explain_one(model, layer, neuron, general, word_vectors(model, args.word_vectors), k=args.top,
                             executor=executor, job=job)
    except AuditInputError:
        _discard_fresh(state)
        raise
    finally:
        executor.close()
    print(f"{args.neuron} ({model.name}): {record['description']}")
    print("  top tokens: " + ", ".join(f"{t['token']} {t['score']:.2f}" for t in record["top_tokens"][:10]))
    if record["coherence"]:
        c = record["coherence"]
        print(f"  coherence {c['value']:.2f} (random word sets {c['null_mean']:.2f}, 95th pct {c['null_p95']:.2f})")
    for s in record.get("substitutions", [])[:10]:
        print(f"  {s['token']} -> {s['substitute']}: {s['original']:.2f} -> {s['activation']:.2f}  ({s['context']})")
    for p in record.get("graph_words", record.get("graph", []))[:10]:
        print(f"  pattern {' <- '.join(p['tokens'])}: {p['activation']:.2f}")
    for kind, score in record.get("scores", {}).items():
        print(f"  {kind}: {score['reading']}")
    if record.get("causal"):
        print(f"  causal: {record['causal']['reading']}")
    if args.json:
        out = Path(args.json)
        try:
            write_file(out, json.dumps(record, indent=2, default=float))
        except OSError as exc:
            _discard_fresh(state)
            raise AuditInputError(f"--json: cannot write {out} ({exc.strerror or exc})") from None
        print(f"wrote {out}")
    if state is not None:
        state.remove()
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from .results.io import load_results, to_json
    from .results.search import search

    rows = search(to_json(load_results(args.results)), args.token)
    if not rows:
        print(f"no reported neuron's explanation names {args.token!r}")
    for row in rows:
        print(f"{row['neuron']:>12s}  {row['probeset']}: {row['relation']} {args.token!r} ({row['score']:.2f}); "
              f"{row['description']}")
    return EXIT_OK


COMMANDS = {"run": cmd_run, "compare": cmd_compare, "explain": cmd_explain, "search": cmd_search,
            "render": cmd_render, "schema": cmd_schema, "validate": cmd_validate, "import": cmd_import}


def _quiet_libraries() -> None:
    """Keep the terminal to our own progress bars and messages: no loader bars or library warnings."""
    import logging

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


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Our own warnings as one line each; anything else the standard way."""
    if issubclass(category, AuditWarning):
        print(f"neuron-audit: warning: {' '.join(str(message).split())}", file=sys.stderr)
    else:
        _standard_showwarning(message, category, filename, lineno, file, line)


_standard_showwarning = warnings.showwarning


def _exit_now(code: int) -> None:
    """End the process at once, skipping the interpreter's teardown. Only after a Ctrl-C, once every handler
    above has removed what the run staged and stopped what it started: the libraries' own teardown (a Ray
    driver's core worker, torch's thread pools) then takes seconds on a loaded machine, and an interrupted
    run must end promptly."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``neuron-audit`` and ``python -m audit``.

    Everything, library imports included, runs inside the handlers below, so Ctrl-C at any moment after
    start-up is one line and exit code 130, and bad input one line and exit code 2.
    """
    entry = argv is None  # the process's own command line: this call is the whole program
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        warnings.showwarning = _show_warning
        _quiet_libraries()
        args = build_parser().parse_args(argv)
        args.argv = argv
        return COMMANDS[args.command](args)
    except AuditInputError as exc:
        print(f"neuron-audit: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("neuron-audit: interrupted", file=sys.stderr)
        if entry:
            _exit_now(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the last line of defence: one line, exit 1, traceback on --debug
        if debug:
            raise
        print(f"neuron-audit: unexpected error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_ERROR
    finally:
        warnings.showwarning = _standard_showwarning
