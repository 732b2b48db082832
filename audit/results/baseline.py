"""What changed since a baseline audit: the ``baseline`` block of results.json, from two result dicts alone.

Pure: no file reading here (the CLI reads the baseline through the validated results loader and hands the dict
in). Probe sets are matched by name and their content hash tells whether a same-named set changed. Policy checks
are matched by name; a check *newly fails* when it fails now and passed or was not evaluated in the baseline.
Output-level scores are compared through the 95% CIs both files carry (see :data:`DIFFERENCE_METHOD`).
Neurons are matched by id only when both audits read the same weights; otherwise only counts are compared, and
``neuron-audit compare`` is the tool that matches neurons across checkpoints.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Sequence

from ..errors import AuditInputError
from .checks import CheckView, policy_checks

Z95 = 1.959963984540054
DIFFERENCE_METHOD = (
    "difference of two independent estimates: each run's 95% CI is turned into a standard error, "
    "(upper − lower) / (2 × 1.96), the two are combined as √(se₁² + se₂²), and the difference's 95% CI is the "
    "difference ± 1.96 × that. When both runs scored the same items the two estimates are positively correlated, "
    "so this interval is conservative (wider than a paired one).")
NEURON_CRITERIA = {
    "concept": "neurons selective for the concept (q < alpha), and the reported top neurons by AUROC",
    "paired": "group-selective neurons (q < alpha and |d_z| ≥ the effect floor), and the reported top neurons",
}
DIFFERENT_WEIGHTS = ("The two audits read different weights, so a neuron id does not name the same neuron in both; "
                     "only the counts are compared here (neuron-audit compare matches neurons across checkpoints "
                     "by their activations)")


def probeset_identities(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, content sha256) of each probe set a result audited, in its order."""
    return [(s["name"], s["sha256"]) for s in result.get("probesets", [])]


def compared_probesets(baseline: Sequence[tuple[str, str]], current: Sequence[tuple[str, str]], *,
                       where: str) -> list[dict[str, Any]]:
    """Each probe set of either run with its status: ``same`` (name and content), ``changed`` (same name, other
    content), ``only in the baseline`` or ``only in this run``. Raises :class:`AuditInputError` naming
    ``where`` when the two share no probe set name (nothing to compare)."""
    old, new = dict(baseline), dict(current)
    shared = [name for name in new if name in old]
    if not shared:
        raise AuditInputError(f"{where}: shares no probe set with this run (baseline: {', '.join(old) or 'none'}; "
                              f"this run: {', '.join(new) or 'none'})")
    rows = []
    for name in [*new, *(n for n in old if n not in new)]:
        status = ("only in this run" if name not in old else "only in the baseline" if name not in new
                  else "same" if old[name] == new[name] else "changed")
        rows.append({"name": name, "status": status, "sha256_baseline": old.get(name), "sha256_current": new.get(name)})
    return rows


# --- policy checks ------------------------------------------------------------------------------------------

def _change(old: CheckView | None, new: CheckView | None) -> str:
    if old is None:
        return "not in the baseline"
    if new is None:
        return "not in this run"
    if new.outcome == "FAIL" and old.outcome != "FAIL":
        return "newly failing"
    if new.outcome == "PASS" and old.outcome == "FAIL":
        return "newly passing"
    if new.outcome == old.outcome:
        return "unchanged"
    return f"{old.outcome} → {new.outcome}"


def diff_checks(baseline: Sequence[CheckView] | None, current: Sequence[CheckView] | None) -> dict[str, Any]:
    """Checks matched by name: the names that newly fail and newly pass, and a row per check."""
    old = {c.name: c for c in baseline or []}
    new = {c.name: c for c in current or []}
    rows = []
    for name in [*new, *(n for n in old if n not in new)]:
        before, after = old.get(name), new.get(name)
        either: CheckView = after if after is not None else before  # type: ignore[assignment]
        rows.append({"name": name, "probeset": either.probeset, "metric": either.metric,
                     "change": _change(before, after),
                     "baseline": None if before is None else _check_state(before),
                     "current": None if after is None else _check_state(after)})
    notes = []
    if baseline is None:
        notes.append("the baseline carries no policy checks (it ran without a policy)")
    if current is None:
        notes.append("this run carries no policy checks (give --policy)")
    return {"newly_failing": [r["name"] for r in rows if r["change"] == "newly failing"],
            "newly_passing": [r["name"] for r in rows if r["change"] == "newly passing"],
            "rows": rows, "notes": notes}


def _check_state(check: CheckView) -> dict[str, Any]:
    return {"outcome": check.outcome, "value": check.value, "ci": None if check.ci is None else list(check.ci),
            "threshold": check.threshold}


# --- output-level scores ------------------------------------------------------------------------------------

def _estimate(value: Any, ci: Any) -> dict[str, Any] | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return None
    interval = list(ci) if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(
        isinstance(v, (int, float)) and math.isfinite(v) for v in ci) else None
    return {"value": float(value), "ci": interval}


def output_scores(section: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(score id, plain label, {value, ci}) for every output-level score a paired section carries."""
    output = section.get("disparity", {}).get("output")
    if not output:
        return
    table = output.get("table", {})
    for pair in table.get("pairs", []):
        key = f"{pair['group']}|{pair['versus']}"
        if "difference" in pair:
            yield (f"table.difference[{key}]", f"output {output.get('metric', 'score')}: {pair['group']} − "
                   f"{pair['versus']}", _estimate(pair["difference"], pair.get("ci95")))
        elif "cosine" in pair:
            yield (f"table.cosine[{key}]", f"mean cosine between the {pair['group']} and {pair['versus']} versions",
                   _estimate(pair["cosine"], pair.get("ci95")))
    for row in (output.get("sensitivity") or {}).get("rows", []):
        yield (f"sensitivity.excess[{row['group']}|{row['versus']}]",
               f"counterfactual sensitivity excess (1 − cosine) of the {row['group']}/{row['versus']} swap "
               "over a matched control swap", _estimate(row["excess"], row.get("excess_ci95")))
    for row in (output.get("preference") or {}).get("rows", []):
        yield (f"preference.share[{row['group']}|{row['versus']}]",
               f"share of items whose {row['group']} version the model prefers over {row['versus']} (0.5 = none)",
               _estimate(row["share"], row.get("ci95")))
    target = output.get("target")
    for pair in (target or {}).get("table", {}).get("pairs", []):
        if "difference" in pair:
            yield (f"target.difference[{pair['group']}|{pair['versus']}]",
                   f"target continuation {target.get('metric', 'score')}: {pair['group']} − {pair['versus']}",
                   _estimate(pair["difference"], pair.get("ci95")))
    overall = (output.get("stereoset") or {}).get("overall")
    if overall:
        for score in ("ss", "lms", "icat"):
            yield f"stereoset.{score}", f"StereoSet {score} (0–100)", _estimate(overall[score], overall.get(
                f"{score}_ci95"))


def difference_ci(baseline: Mapping[str, Any], current: Mapping[str, Any]) -> list[float] | None:
    """The 95% CI of current − baseline from the two runs' own 95% CIs (see :data:`DIFFERENCE_METHOD`);
    None when either run has no interval."""
    if baseline["ci"] is None or current["ci"] is None:
        return None
    se = math.hypot((baseline["ci"][1] - baseline["ci"][0]) / (2 * Z95),
                    (current["ci"][1] - current["ci"][0]) / (2 * Z95))
    difference = current["value"] - baseline["value"]
    return [difference - Z95 * se, difference + Z95 * se]


def diff_outputs(baseline: Mapping[str, Any], current: Mapping[str, Any], shared: Sequence[str]) -> list[dict]:
    """Every output-level score both runs carry on the shared probe sets, with its difference and CI."""
    old = {s["name"]: s for s in baseline.get("probesets", [])}
    new = {s["name"]: s for s in current.get("probesets", [])}
    rows = []
    for name in shared:
        before = {score: (label, estimate) for score, label, estimate in output_scores(old[name])}
        for score, label, after in output_scores(new[name]):
            if score not in before or after is None or before[score][1] is None:
                continue
            was = before[score][1]
            ci = difference_ci(was, after)
            rows.append({"probeset": name, "score": score, "label": label, "baseline": was, "current": after,
                         "difference": after["value"] - was["value"], "ci": ci,
                         "excludes_zero": None if ci is None else bool(ci[0] > 0 or ci[1] < 0)})
    return rows


# --- neurons ------------------------------------------------------------------------------------------------

def _flagged(section: Mapping[str, Any]) -> tuple[int, list[str]]:
    """A section's flagged-neuron count and its reported top neurons (ids, in order, without repeats)."""
    if section["kind"] == "concept":
        count, reported = section["summary"]["n_significant"], section.get("neurons", [])
    else:
        count, reported = section["disparity"]["counts"]["q_and_effect"]["any_group"], \
            section["disparity"].get("neurons", [])
    return int(count), list(dict.fromkeys(n["name"] for n in reported))


def diff_neurons(baseline: Mapping[str, Any], current: Mapping[str, Any], shared: Sequence[str]) -> dict[str, Any]:
    """Flagged-neuron counts per shared probe set; with the same weights also the reported top neurons that
    appeared or vanished, by neuron id."""
    same = baseline["model"]["weights_sha256"] == current["model"]["weights_sha256"]
    old = {s["name"]: s for s in baseline.get("probesets", [])}
    new = {s["name"]: s for s in current.get("probesets", [])}
    rows = []
    for name in shared:
        if old[name]["kind"] != new[name]["kind"]:
            continue
        count_before, top_before = _flagged(old[name])
        count_after, top_after = _flagged(new[name])
        row: dict[str, Any] = {"probeset": name, "criterion": NEURON_CRITERIA[new[name]["kind"]],
                               "flagged_baseline": count_before, "flagged_current": count_after,
                               "difference": count_after - count_before,
                               "reported_baseline": len(top_before), "reported_current": len(top_after)}
        if same:
            row["appeared"] = [n for n in top_after if n not in top_before]
            row["vanished"] = [n for n in top_before if n not in top_after]
        rows.append(row)
    note = ("Same weights (sha256): neurons matched by id; 'appeared' and 'vanished' are the reported top "
            "neurons present in only one of the two runs" if same else DIFFERENT_WEIGHTS)
    return {"same_weights": same, "matched_by": "neuron id" if same else None, "note": note, "per_probeset": rows}


# --- the block ----------------------------------------------------------------------------------------------

def diff_baseline(baseline: Mapping[str, Any], current: Mapping[str, Any], *, path: str,
                  sha256: str) -> dict[str, Any]:
    """The ``baseline`` block of ``current`` (a results.json dict, policy already evaluated) against
    ``baseline`` (another results.json dict read from ``path``, whose bytes hash to ``sha256``)."""
    sets = compared_probesets(probeset_identities(baseline), probeset_identities(current), where=f"--baseline: {path}")
    shared = [row["name"] for row in sets if row["status"] in ("same", "changed")]
    return {"path": path, "sha256": sha256,
            "model": {"name": baseline["model"]["name"], "weights_sha256": baseline["model"]["weights_sha256"],
                      "started_at": baseline["run"]["started_at"]},
            "compared_probesets": sets,
            "checks": diff_checks(policy_checks(baseline), policy_checks(current)),
            "outputs": diff_outputs(baseline, current, shared), "output_method": DIFFERENCE_METHOD,
            "neurons": diff_neurons(baseline, current, shared)}


def newly_failing(result: Mapping[str, Any]) -> list[str]:
    """Names of the checks that newly fail against the baseline (empty without a baseline block)."""
    return list(result.get("baseline", {}).get("checks", {}).get("newly_failing", []))
