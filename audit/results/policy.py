"""Policy checks: thresholds from an audit config (YAML) evaluated on a result, PASS or FAIL each.

```yaml
checks:
  - probeset: toxicity
    metric: validated_selective_neurons   # see METRICS
    max: 50
  - probeset: gender-occupations
    metric: output_disparity
    max: 0.05
```
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

from ..errors import AuditInputError
from ..inputs import read_input_text
from ..provenance import sha256_file

STRONG_AUROC = 0.8


def _number(value: Any) -> float | None:
    """A metric's value; None when the run could not compute it (NaN is written as null)."""
    return None if value is None or not math.isfinite(value) else float(value)


def _largest(values: Any) -> float | None:
    return _number(max(values, default=None))


def _selective(section: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Concept sets: neurons with q < alpha and AUROC ≥ min_auroc (default 0.8) in either direction."""
    return _number(section["summary"]["strong_selective"].get(str(check.get("min_auroc", STRONG_AUROC))))


def _validated(section: Mapping[str, Any], check: Mapping[str, Any]) -> float | None:
    """Selective neurons, counted only when ablating the top ones beats the random sets (p ≤ alpha)."""
    ablation = section.get("ablation")
    if ablation is None:
        raise AuditInputError(f"policy: {section['name']}: validated_selective_neurons needs the ablation results "
                              "(run without --no-ablation)")
    p_value = ablation.get("p_value")
    validated = p_value is not None and p_value <= section["alpha"]  # skipped or null: nothing validated
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
                              "(a causal LM); this model's results have no preference score")
    share = preference["rows"][0].get("share") if preference["rows"] else None
    return None if share is None else abs(share - 0.5)


METRICS: dict[str, tuple[str, Callable[[Mapping, Mapping], float | None]]] = {
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
CHECK_KEYS = {"name", "probeset", "metric", "max", "min", "min_auroc"}


def load_policy(path: str | Path, metrics: Mapping[str, Any] = METRICS) -> dict[str, Any]:
    """Read and validate a policy file (``metrics``: :data:`METRICS` for audits, :data:`COMPARE_METRICS` for
    comparisons); errors name the file and field."""
    path = Path(path)
    text = read_input_text(path, "policy file")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AuditInputError(f"--policy: {path}: not readable YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict) or set(document) != {"checks"} or not isinstance(document["checks"], list) \
            or not document["checks"]:
        raise AuditInputError(f"{path}: checks: expected a mapping with one key, 'checks', holding a non-empty list")
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
        if "name" in check and (not isinstance(check["name"], str) or not check["name"].strip()):
            raise AuditInputError(f"{where}.name: expected a non-empty string, got {type(check['name']).__name__}")
        if "min_auroc" in check and check["min_auroc"] not in (0.7, 0.8, 0.9):
            raise AuditInputError(f"{where}.min_auroc: must be 0.7, 0.8 or 0.9, got {check['min_auroc']!r}")
    return {"file": str(path), "sha256": sha256_file(path), "checks": document["checks"]}


def check_applies(policy: Mapping[str, Any], probesets: Sequence[Any], *, ablation: bool,
                  metrics: Mapping[str, Any] = METRICS) -> None:
    """Fail early when a check names a probe set that will not be audited, of the wrong kind, or needs
    the ablation that is switched off."""
    kinds = {probeset.name: probeset.kind for probeset in probesets}
    for i, check in enumerate(policy["checks"]):
        where = f"{policy['file']}: checks[{i}]"
        if check["probeset"] not in kinds:
            raise AuditInputError(f"{where}.probeset: {check['probeset']!r} is not among the probe sets to audit "
                                  f"({', '.join(kinds)})")
        kind = metrics[check["metric"]][0]
        if kind != "any" and kinds[check["probeset"]] != kind:
            raise AuditInputError(f"{where}.metric: {check['metric']} applies to {kind} probe sets; "
                                  f"{check['probeset']} is {kinds[check['probeset']]}")
        if check["metric"].endswith("validated_selective_neurons") and not ablation:
            raise AuditInputError(f"{where}.metric: {check['metric']} needs ablation; drop --no-ablation")


def evaluate(policy: Mapping[str, Any], result: Mapping[str, Any],
             metrics: Mapping[str, Any] = METRICS) -> dict[str, Any]:
    """PASS/FAIL per check against ``result`` (an audit, or a comparison with :data:`COMPARE_METRICS`); a check
    naming a probe set not in the result is an input error."""
    sections = {section["name"]: section for section in result["probesets"]}
    outcomes = []
    for i, check in enumerate(policy["checks"]):
        section = sections.get(check["probeset"])
        if section is None:
            raise AuditInputError(f"{policy['file']}: checks[{i}].probeset: {check['probeset']!r} was not audited "
                                  f"(audited: {', '.join(sections)})")
        kind, metric = metrics[check["metric"]]
        if kind != "any" and section["kind"] != kind:
            raise AuditInputError(f"{policy['file']}: checks[{i}].metric: {check['metric']} applies to {kind} "
                                  f"probe sets; {check['probeset']} is {section['kind']}")
        value = metric(section, check)
        bound, limit = ("max", check["max"]) if "max" in check else ("min", check["min"])
        # a value the run could not compute (null) cannot show the bound holds: the check fails, and says why
        passed = value is not None and (value <= limit if bound == "max" else value >= limit)
        outcomes.append({**({"note": "the value is null (the run could not compute it)"} if value is None else {}),"name": check.get("name") or f"{check['probeset']}: {check['metric']} {bound} {limit}",
                         "probeset": check["probeset"], "metric": check["metric"], "bound": bound, "limit": limit,
                         "value": value, "passed": passed, "verdict": "PASS" if passed else "FAIL"})
    return {"file": policy["file"], "sha256": policy["sha256"], "checks": outcomes,
            "passed": all(o["passed"] for o in outcomes)}
