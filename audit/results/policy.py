"""Policy checks: thresholds from an audit config (YAML) evaluated on a result: PASS, FAIL, or NOT EVALUATED
(with the reason) each, with the measured value, its 95 % CI where one exists, and its unit.

```yaml
name: my-policy                           # optional: name, description, skip_unaudited
checks:
  - probeset: toxicity                    # a probe-set name, or a pattern such as "crows-pairs*"
    metric: validated_selective_neurons   # see METRICS
    max: 50
    rationale: why this threshold          # optional, printed beside the verdict
    source: where it comes from            # optional
  - probeset: gender-occupations
    metric: output_disparity
    model_kind: encoder                   # optional: the check applies to this kind of model only
    max: 0.05
```

Without ``--policy`` the shipped default policy (:data:`DEFAULT_POLICY`, ``audit/data/policies/default.yaml``) is
applied; it skips checks whose probe sets were not audited (``skip_unaudited: true``).
"""

from __future__ import annotations

import fnmatch
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from ..errors import AuditInputError
from ..inputs import read_input_text
from ..provenance import sha256_file

STRONG_AUROC = 0.8
POLICIES_DIR = Path(__file__).resolve().parents[1] / "data" / "policies"
DEFAULT_POLICY = POLICIES_DIR / "default.yaml"
DEFAULT_COMPARE_POLICY = POLICIES_DIR / "compare-default.yaml"
MODEL_KINDS = ("encoder", "causal-lm")


def _number(value: Any) -> float | None:
    """A metric's value; None when the run could not compute it (NaN is written as null)."""
    return None if value is None or not math.isfinite(value) else float(value)


def _largest(values: Any) -> float | None:
    return _number(max(values, default=None))


def _selective(section: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Concept sets: neurons with q < alpha and AUROC ≥ min_auroc (default 0.8) in either direction."""
    return _number(section["summary"]["strong_selective"].get(str(check.get("min_auroc", STRONG_AUROC))))


def _validated(section: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Selective neurons, counted only when the ablation validated the top ones: corrected p < 0.05 with the
    effect in the expected direction (``validated``; results written before it: uncorrected p ≤ alpha)."""
    ablation = section.get("ablation")
    if ablation is None:
        raise AuditInputError(f"policy: {section['name']}: validated_selective_neurons needs the ablation results "
                              "(run without --no-ablation)")
    if "validated" in ablation:  # corrected for the audit's multiple tests (issue 21)
        validated = bool(ablation["validated"])
    else:  # older results: the uncorrected empirical p; skipped ablations have nothing to validate
        validated = "p_value" in ablation and ablation["p_value"] <= section["alpha"]
    return _selective(section, check) if validated else 0.0


def _group_selective(section: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Paired sets: neurons selective for some group (q < alpha and |d_z| ≥ the effect floor)."""
    return float(section["disparity"]["counts"]["q_and_effect"]["any_group"])


def _output_disparity(section: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Paired sets: largest |log-likelihood gap| between two groups (causal LMs); encoders: largest excess
    embedding shift of the group swap over a matched control swap (counterfactual sensitivity), or for sets
    without one (translations) largest 1 − mean cosine between an item's versions."""
    output = section["disparity"]["output"]
    table = output["table"]
    if "per_group" in table:
        return _largest(abs(pair.get("difference")) for pair in table["pairs"] if pair.get("difference") is not None)
    if output.get("sensitivity"):
        return _largest(row["excess"] for row in output["sensitivity"]["rows"] if row.get("excess") is not None)
    return _largest(1.0 - pair["cosine"] for pair in table["pairs"] if pair.get("cosine") is not None)


def _preference_bias(section: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Paired sets with a sentence score (causal LMs): |share − 0.5| of items whose first-group version the model
    prefers over the second's (CrowS-Pairs: distance of the stereotype score from no preference)."""
    preference = section["disparity"]["output"].get("preference")
    if not preference:
        raise AuditInputError(f"policy: {section['name']}: preference_bias needs a model that scores sentences "
                              "(a causal LM): this model gives no sentence score, so there is no preference to "
                              "measure")
    share = preference["rows"][0].get("share") if preference["rows"] else None
    return None if share is None else abs(share - 0.5)


def _control_share(section: Mapping[str, Any], check: Mapping[str, Any]) -> float:
    """Concept sets: share of neurons that pass q < alpha when the concept labels are shuffled (should be 0;
    a higher share means the selectivity test finds neurons where there is nothing to find)."""
    return section["control"]["n_significant"] / section["summary"]["n_neurons_tested"]


def _stereoset_distance(section: Mapping[str, Any], check: Mapping[str, Any]) -> float:
    """StereoSet sets (causal LMs): distance of the stereotype score ss (0–100) from 50, the unbiased value."""
    stereoset = section["disparity"]["output"].get("stereoset")
    if not stereoset:
        raise AuditInputError(f"policy: {section['name']}: stereoset_ss_distance needs StereoSet scores (a causal LM "
                              "on an imported StereoSet set); these results have none")
    return abs(stereoset["overall"]["ss"] - 50.0)


METRICS: dict[str, tuple[str, Callable[[Mapping, Mapping], float | None]]] = {
    "control_selective_share": ("concept", _control_share),
    "stereoset_ss_distance": ("paired", _stereoset_distance),
    "preference_bias": ("paired", _preference_bias),
    "selective_neurons": ("concept", _selective),
    "validated_selective_neurons": ("concept", _validated),
    "group_selective_neurons": ("paired", _group_selective),
    "output_disparity": ("paired", _output_disparity),
}


def _new_flagged(diff: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Comparisons: neurons flagged in B whose matched partner in A was not flagged (or has no partner)."""
    return float(diff["became_flagged"])


def _new_validated(diff: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Comparisons: new flagged neurons in B, counted only when B's ablation validated its flagged neurons."""
    if diff["validated_b"] is None:
        raise AuditInputError(f"policy: {diff['name']}: new_validated_selective_neurons needs the ablation results "
                              "(compare without --no-ablation)")
    return float(diff["became_flagged"]) if diff["validated_b"] else 0.0


def _output_change(diff: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Comparisons: B's output-level bias score minus A's (the ``output_disparity`` metric, same items)."""
    if "output" not in diff:
        raise AuditInputError(f"policy: {diff['name']}: output_disparity_change needs both models' outputs on "
                              "this set (models of the same kind)")
    return _number(diff["output"].get("delta"))


def _overlap(diff: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Comparisons: share of A's flagged neurons whose persistent partner B also flags (1 when A flags none)."""
    return 1.0 if diff["share_overlap"] is None else float(diff["share_overlap"])


COMPARE_METRICS: dict[str, tuple[str, Callable[[Mapping, Mapping], float | None]]] = {
    "new_selective_neurons": ("concept", _new_flagged),
    "new_validated_selective_neurons": ("concept", _new_validated),
    "new_group_selective_neurons": ("paired", _new_flagged),
    "output_disparity_change": ("paired", _output_change),
    "flagged_overlap": ("any", _overlap),
}
CHECK_KEYS = {"name", "probeset", "metric", "max", "min", "min_auroc", "model_kind", "rationale", "source"}
POLICY_KEYS = {"checks", "name", "description", "skip_unaudited"}

# What each metric measures, in plain words, and its unit or scale (printed beside the value).
MEASURES: dict[str, tuple[str, str]] = {
    "control_selective_share": ("neurons that look selective when the concept labels are shuffled",
                                "share of neurons tested (0 to 1)"),
    "selective_neurons": ("strongly concept-selective neurons", "neurons"),
    "validated_selective_neurons": ("strongly concept-selective neurons, counted only when ablation validates them",
                                    "neurons"),
    "group_selective_neurons": ("neurons selective for a group (a neuron can be selective for several groups)",
                                "neurons"),
    "output_disparity": ("largest difference in the model's own outputs between the groups", "score difference"),
    "preference_bias": ("how far the model's preference between the two versions is from no preference",
                        "|share − 0.5| (0 = none, 0.5 = always)"),
    "stereoset_ss_distance": ("how far the StereoSet stereotype score is from the unbiased 50",
                              "|ss − 50| (ss on 0 to 100)"),
    "new_selective_neurons": ("neurons flagged in B whose partner in A was not flagged", "neurons"),
    "new_validated_selective_neurons": ("new flagged neurons in B, counted only when B's ablation validates them",
                                        "neurons"),
    "new_group_selective_neurons": ("group-selective neurons in B whose partner in A was not", "neurons"),
    "output_disparity_change": ("change of the output-level bias score from A to B", "B − A, in the score's unit"),
    "flagged_overlap": ("share of A's flagged neurons whose partner B also flags", "share (0 to 1)"),
}


def _distance_ci(ci: Sequence[float] | None, centre: float) -> list[float] | None:
    """The 95 % interval of |x − centre| from the interval of x."""
    if not ci or any(v is None for v in ci):
        return None
    low, high = ci[0] - centre, ci[1] - centre
    if low <= 0 <= high:
        return [0.0, max(-low, high)]
    return sorted([abs(low), abs(high)])


def _interval_and_unit(metric: str, section: Mapping[str, Any]) -> tuple[list[float] | None, str]:
    """The 95 % CI of a metric's value where the results hold one, and the unit the value is in."""
    unit = MEASURES[metric][1]
    if metric == "output_disparity":
        output = section["disparity"]["output"]
        table = output["table"]
        if "per_group" in table:
            pair = max(table["pairs"], key=lambda row: abs(row["difference"]))
            return _distance_ci(pair.get("ci95"), 0.0), f"|difference| in {output.get('metric', 'the score')}"
        if output.get("sensitivity"):
            row = max(output["sensitivity"]["rows"], key=lambda row: row["excess"])
            return row.get("excess_ci95"), "1 − cosine, beyond a control swap (0 = none)"
        pair = min(table["pairs"], key=lambda row: row["cosine"])
        ci = pair.get("ci95")
        return ([1.0 - ci[1], 1.0 - ci[0]] if ci else None), "1 − cosine (0 = same, 1 = unrelated)"
    if metric == "preference_bias":
        return _distance_ci(section["disparity"]["output"]["preference"]["rows"][0].get("ci95"), 0.5), unit
    if metric == "stereoset_ss_distance":
        return _distance_ci(section["disparity"]["output"]["stereoset"]["overall"].get("ss_ci95"), 50.0), unit
    if metric == "output_disparity_change":
        return section["output"].get("ci95"), unit
    return None, unit


def load_policy(path: str | Path, metrics: Mapping[str, Any] = METRICS) -> dict[str, Any]:
    """Read and validate a policy file (``metrics``: :data:`METRICS` for audits, :data:`COMPARE_METRICS` for
    comparisons); errors name the file and field."""
    path = Path(path)
    text = read_input_text(path, "policy file")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AuditInputError(f"--policy: {path}: not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict) or "checks" not in document or set(document) - POLICY_KEYS \
            or not isinstance(document["checks"], list) or not document["checks"]:
        raise AuditInputError(f"{path}: checks: expected a mapping with a key 'checks' holding a non-empty list "
                              f"(allowed keys: {', '.join(sorted(POLICY_KEYS))})")
    for key in ("name", "description"):
        if key in document and not isinstance(document[key], str):
            raise AuditInputError(f"{path}: {key}: expected a string, got {type(document[key]).__name__}")
    if "skip_unaudited" in document and not isinstance(document["skip_unaudited"], bool):
        raise AuditInputError(f"{path}: skip_unaudited: expected true or false, got {document['skip_unaudited']!r}")
    for i, check in enumerate(document["checks"]):
        where = f"{path}: checks[{i}]"
        if not isinstance(check, dict):
            raise AuditInputError(f"{where}: expected a mapping")
        unknown = sorted(set(check) - CHECK_KEYS)
        if unknown:
            raise AuditInputError(f"{where}.{unknown[0]}: unknown field (allowed: {', '.join(sorted(CHECK_KEYS))})")
        for key in ("probeset", "metric"):
            if not isinstance(check.get(key), str):
                raise AuditInputError(f"{where}.{key}: missing or not a string")
        if check["metric"] not in metrics:
            raise AuditInputError(f"{where}.metric: must be one of {', '.join(metrics)}, got {check['metric']!r}")
        bounds = [key for key in ("max", "min") if key in check]
        if len(bounds) != 1 or isinstance(check[bounds[0]], bool) or not isinstance(check[bounds[0]], (int, float)):
            raise AuditInputError(f"{where}: needs exactly one numeric bound, max or min")
        if not math.isfinite(check[bounds[0]]):
            raise AuditInputError(f"{where}.{bounds[0]}: must be a finite number, got {check[bounds[0]]!r}")
        for key in ("name", "rationale", "source"):
            if key in check and (not isinstance(check[key], str) or not check[key].strip()):
                raise AuditInputError(f"{where}.{key}: expected a non-empty string, got {type(check[key]).__name__}")
        if "model_kind" in check and check["model_kind"] not in MODEL_KINDS:
            raise AuditInputError(f"{where}.model_kind: must be one of {', '.join(MODEL_KINDS)}, "
                                  f"got {check['model_kind']!r}")
        if "min_auroc" in check and check["min_auroc"] not in (0.7, 0.8, 0.9):
            raise AuditInputError(f"{where}.min_auroc: must be 0.7, 0.8 or 0.9, got {check['min_auroc']!r}")
    return {"file": str(path), "path": str(path.resolve()), "sha256": sha256_file(path), "checks": document["checks"],
            "name": document.get("name", path.stem), "description": document.get("description", ""),
            "skip_unaudited": document.get("skip_unaudited", False)}


def default_policy(comparison: bool = False) -> dict[str, Any]:
    """The shipped default policy (audits) or default comparison policy, loaded like a user's file."""
    path = DEFAULT_COMPARE_POLICY if comparison else DEFAULT_POLICY
    policy = load_policy(path, COMPARE_METRICS if comparison else METRICS)
    policy["file"] = f"{path.parent.name}/{path.name} (default)"
    policy["default"] = True
    return policy


def _is_pattern(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def _matching(check: Mapping[str, Any], kinds: Mapping[str, str], metrics: Mapping[str, Any],
              lenient: bool = False) -> list[str]:
    """The audited probe sets a check names: its exact name, or every set of the metric's kind a pattern matches
    (``lenient``, for policies that skip unaudited sets: a named set of another kind does not match either)."""
    kind = metrics[check["metric"]][0]
    if not _is_pattern(check["probeset"]):
        found = [check["probeset"]] if check["probeset"] in kinds else []
        return [name for name in found if kind == "any" or kinds[name] == kind] if lenient else found
    return [name for name in kinds
            if fnmatch.fnmatchcase(name, check["probeset"]) and (kind == "any" or kinds[name] == kind)]


def check_applies(policy: Mapping[str, Any], probesets: Sequence[Any], *, ablation: bool,
                  metrics: Mapping[str, Any] = METRICS) -> None:
    """Fail early when a check names a probe set that will not be audited, of the wrong kind, or needs
    the ablation that is switched off (policies with ``skip_unaudited`` skip checks of sets not audited)."""
    kinds = {probeset.name: probeset.kind for probeset in probesets}
    for i, check in enumerate(policy["checks"]):
        where = f"{policy['file']}: checks[{i}]"
        names = _matching(check, kinds, metrics, lenient=bool(policy.get("skip_unaudited")))
        if not names:
            if policy.get("skip_unaudited"):
                continue
            raise AuditInputError(f"{where}.probeset: {check['probeset']!r} is not among the probe sets to audit "
                                  f"({', '.join(kinds)})")
        kind = metrics[check["metric"]][0]
        for name in names:
            if kind != "any" and kinds[name] != kind:
                raise AuditInputError(f"{where}.metric: {check['metric']} applies to {kind} probe sets; "
                                      f"{name} is {kinds[name]}")
        if check["metric"].endswith("validated_selective_neurons") and not ablation:
            raise AuditInputError(f"{where}.metric: {check['metric']} needs ablation; drop --no-ablation")


def _threshold_text(bound: str, limit: float) -> str:
    return f"{'≤' if bound == 'max' else '≥'} {limit:g}"


def _model_kind(result: Mapping[str, Any]) -> str | None:
    model = result.get("model") or result.get("model_b") or {}
    return model.get("kind")


def evaluate(policy: Mapping[str, Any], result: Mapping[str, Any],
             metrics: Mapping[str, Any] = METRICS) -> dict[str, Any]:
    """PASS / FAIL / NOT EVALUATED per check against ``result`` (an audit, or a comparison with
    :data:`COMPARE_METRICS`). A check naming a probe set not in the result is an input error unless the policy
    skips unaudited sets; a check whose measure these results cannot give is NOT EVALUATED, with the reason."""
    sections = {section["name"]: section for section in result["probesets"]}
    kinds = {name: section["kind"] for name, section in sections.items()}
    model_kind = _model_kind(result)
    outcomes, skipped = [], []
    for i, check in enumerate(policy["checks"]):
        names = _matching(check, kinds, metrics, lenient=bool(policy.get("skip_unaudited")))
        if not names:
            if policy.get("skip_unaudited"):
                skipped.append({"probeset": check["probeset"], "metric": check["metric"],
                                "reason": "no such probe set in this run"})
                continue
            raise AuditInputError(f"{policy['file']}: checks[{i}].probeset: {check['probeset']!r} was not audited "
                                  f"(audited: {', '.join(sections)})")
        for name in names:
            outcomes.append(_outcome(policy, i, check, sections[name], metrics, model_kind))
    counts = {label: sum(o["outcome"] == label for o in outcomes) for label in ("PASS", "FAIL", "NOT EVALUATED")}
    evaluated = {"file": policy["file"], "sha256": policy["sha256"], "checks": outcomes,
                 "passed": counts["FAIL"] == 0, "counts": counts, "not_applicable": skipped}
    for key in ("path", "name", "description", "default"):
        if key in policy:
            evaluated[key] = policy[key]
    return evaluated


def _outcome(policy: Mapping[str, Any], i: int, check: Mapping[str, Any], section: Mapping[str, Any],
             metrics: Mapping[str, Any], model_kind: str | None) -> dict[str, Any]:
    kind, metric = metrics[check["metric"]]
    if kind != "any" and section["kind"] != kind:
        raise AuditInputError(f"{policy['file']}: checks[{i}].metric: {check['metric']} applies to {kind} "
                              f"probe sets; {section['name']} is {section['kind']}")
    bound, limit = ("max", check["max"]) if "max" in check else ("min", check["min"])
    label = f"{section['name']}: {check['metric']} {bound} {limit}"
    if "name" in check:
        label = check["name"] if not _is_pattern(check["probeset"]) else f"{check['name']} ({section['name']})"
    record: dict[str, Any] = {"name": label, "probeset": section["name"], "metric": check["metric"], "bound": bound,
                              "limit": limit, "threshold": _threshold_text(bound, limit),
                              "measure": MEASURES.get(check["metric"], (check["metric"], ""))[0]}
    value, ci, unit, reason = None, None, MEASURES.get(check["metric"], ("", ""))[1], None
    if check.get("model_kind") and model_kind and check["model_kind"] != model_kind:
        reason = f"this check is defined for {check['model_kind']} models; this model is {model_kind}"
    else:
        try:
            value = metric(section, check)
            ci, unit = _interval_and_unit(check["metric"], section)
        except AuditInputError as exc:
            reason = str(exc).split(": ", 2)[-1] if str(exc).startswith("policy: ") else str(exc)
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            reason = f"these results do not hold what the measure needs ({type(exc).__name__}: {exc})"
        if reason is None and (value is None or not math.isfinite(value)):
            reason, value = "the measure could not be computed on these results (no finite value)", None
    if reason is not None:
        passed, outcome = None, "NOT EVALUATED"
    else:
        passed = value <= limit if bound == "max" else value >= limit
        outcome = "PASS" if passed else "FAIL"
    record.update({"value": value, "ci": ci, "unit": unit, "passed": passed, "verdict": outcome, "outcome": outcome,
                   "rationale": check.get("rationale", ""), "source": check.get("source", "")})
    if reason is not None:
        record["reason"] = reason
    return record
