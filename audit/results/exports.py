"""CI exports of the policy checks: JUnit XML (one test case per check) and SARIF 2.1.0 (one rule per check).

Both are built from a result dict alone (an audit's results.json or a comparison.json), so ``run``, ``compare``
and ``render`` write the same files. JUnit follows the Apache Ant schema (a single ``<testsuite>``; a FAIL is a
``<failure>`` naming the value and the threshold, a NOT EVALUATED check is ``<skipped>`` with its reason).
SARIF: a FAIL is a result at level ``error``, a NOT EVALUATED check one at level ``warning`` (the policy could
not be verified there), and a PASS one of kind ``pass``, whose level the SARIF standard fixes at ``none``
(§3.27.9–10: only a failing result may carry error, warning or note). Every result points at the results file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import quote

from ..errors import AuditInputError
from .checks import CheckView, describe_value, policy_checks
from .outdir import write_file

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL = "neuron-audit"
TOOL_URI = "https://pypi.org/project/neuron-audit/"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
LEVELS = {"FAIL": "error", "NOT EVALUATED": "warning", "PASS": "none"}
KINDS = {"FAIL": "fail", "NOT EVALUATED": "fail", "PASS": "pass"}


def _clean(text: str) -> str:
    """Text XML 1.0 can hold (control characters removed)."""
    return _CONTROL.sub("", text)


def _token(text: str) -> str:
    """An xs:token: no line breaks or tabs, single spaces, nothing leading or trailing."""
    return " ".join(_clean(text).split()) or "-"


def _checks(result: Mapping[str, Any]) -> list[CheckView]:
    checks = policy_checks(result)
    if checks is None:
        raise ValueError("the result carries no policy checks to export")
    return checks


def _subject(result: Mapping[str, Any]) -> str:
    if result.get("kind") == "comparison":
        return f"{result['model_a']['name']} versus {result['model_b']['name']}"
    return str(result["model"]["name"])


def _version(result: Mapping[str, Any]) -> str:
    versions = result.get("run", {}).get("versions", {})
    return str(versions.get("neuron-audit") or result.get("run", {}).get("tool_version") or "unknown")


def failure_message(check: CheckView) -> str:
    """One line: what was measured against which threshold, and the outcome."""
    if check.outcome == "NOT EVALUATED":
        return f"{check.name}: not evaluated ({check.reason or 'no reason recorded'}); threshold {check.threshold}"
    verb = "meets" if check.outcome == "PASS" else "does not meet"
    return f"{check.name}: value {describe_value(check)} {verb} the threshold {check.threshold}"


def _details(check: CheckView) -> str:
    lines = [f"probe set: {check.probeset}", f"metric: {check.metric}", f"value: {describe_value(check)}",
             f"threshold: {check.threshold}", f"outcome: {check.outcome}"]
    lines += [f"{key}: {value}" for key, value in (("reason", check.reason), ("rationale", check.rationale),
                                                   ("source", check.source)) if value]
    return "\n".join(lines)


def _timestamp(result: Mapping[str, Any]) -> str:
    """The run's start in UTC as the JUnit schema wants it (no zone designator)."""
    started = result.get("run", {}).get("started_at")
    try:
        moment = datetime.fromisoformat(str(started))
    except ValueError:
        moment = datetime.now(timezone.utc)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def junit_xml(result: Mapping[str, Any], *, results_path: str, results_sha256: str) -> str:
    """The policy checks of ``result`` as a JUnit XML report (Apache Ant schema, one ``<testsuite>``)."""
    checks = _checks(result)
    failures = sum(c.outcome == "FAIL" for c in checks)
    skipped = sum(c.outcome == "NOT EVALUATED" for c in checks)
    suite = ET.Element("testsuite", {
        "name": _token(f"{TOOL} policy: {_subject(result)}"), "timestamp": _timestamp(result),
        "hostname": "localhost", "tests": str(len(checks)), "failures": str(failures), "errors": "0",
        "skipped": str(skipped), "time": f"{float(result.get('run', {}).get('duration_s') or 0.0):.3f}"})
    properties = ET.SubElement(suite, "properties")
    policy = result.get("policy", {})
    for name, value in (("tool", f"{TOOL} {_version(result)}"), ("subject", _subject(result)),
                        ("results", results_path), ("results.sha256", results_sha256),
                        ("policy", str(policy.get("path") or policy.get("file") or "")),
                        ("policy.sha256", str(policy.get("sha256") or ""))):
        ET.SubElement(properties, "property", {"name": name, "value": _clean(value)})
    for check in checks:
        case = ET.SubElement(suite, "testcase", {"name": _token(check.name),
                                                 "classname": _token(f"{TOOL}.{check.probeset}.{check.metric}"),
                                                 "time": "0"})
        if check.outcome == "FAIL":
            failure = ET.SubElement(case, "failure", {"message": _clean(failure_message(check)),
                                                      "type": "PolicyCheckFailed"})
            failure.text = _clean(_details(check))
        elif check.outcome == "NOT EVALUATED":
            skip = ET.SubElement(case, "skipped", {"message": _clean(check.reason or "not evaluated")})
            skip.text = _clean(_details(check))
    out = ET.SubElement(suite, "system-out")
    out.text = _clean("\n".join(failure_message(c) for c in checks))
    ET.SubElement(suite, "system-err").text = ""
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def rule_ids(checks: list[CheckView]) -> list[str]:
    """A stable id per check, ``<probe set>/<metric>``, numbered where a policy checks the same pair twice."""
    base = [re.sub(r"[^A-Za-z0-9_.:/-]+", "-", f"{c.probeset}/{c.metric}") for c in checks]
    ids = []
    for i, name in enumerate(base):
        repeats = base[:i].count(name)
        ids.append(name if base.count(name) == 1 else f"{name}/{repeats + 1}")
    return ids


def _rule(check: CheckView, rule_id: str) -> dict[str, Any]:
    description = f"{check.metric} on the probe set {check.probeset} must be {check.threshold}."
    if check.rationale:
        description += f" Rationale: {check.rationale}"
    if check.source:
        description += f" Source: {check.source}"
    return {"id": rule_id, "shortDescription": {"text": check.name},
            "fullDescription": {"text": description}, "defaultConfiguration": {"level": "error"},
            "properties": {"probeset": check.probeset, "metric": check.metric, "threshold": check.threshold}}


def sarif_json(result: Mapping[str, Any], *, results_uri: str, results_sha256: str) -> str:
    """The policy checks of ``result`` as a SARIF 2.1.0 log: one rule and one result per check, each result
    located in the results file (``results_uri``: a URI reference, relative to the SARIF file or absolute)."""
    checks = _checks(result)
    ids = rule_ids(checks)
    results = []
    for index, (check, rule_id) in enumerate(zip(checks, ids)):
        properties: dict[str, Any] = {"outcome": check.outcome, "probeset": check.probeset, "metric": check.metric,
                                      "value": check.value, "threshold": check.threshold}
        if check.ci is not None:
            properties["ci95"] = list(check.ci)
        if check.unit:
            properties["unit"] = check.unit
        if check.reason:
            properties["reason"] = check.reason
        results.append({
            "ruleId": rule_id, "ruleIndex": index, "kind": KINDS[check.outcome], "level": LEVELS[check.outcome],
            "message": {"text": failure_message(check)},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": results_uri, "index": 0}},
                           "logicalLocations": [{"name": check.probeset, "kind": "module",
                                                 "fullyQualifiedName": f"probesets/{check.probeset}"}]}],
            "properties": properties})
    policy = result.get("policy", {})
    log = {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": TOOL, "version": _version(result), "informationUri": TOOL_URI,
                                "rules": [_rule(c, i) for c, i in zip(checks, ids)]}},
            "artifacts": [{"location": {"uri": results_uri}, "mimeType": "application/json",
                           "hashes": {"sha-256": results_sha256},
                           "description": {"text": f"{TOOL} results of {_subject(result)}"}}],
            "invocations": [{"executionSuccessful": True}],
            "results": results,
            "properties": {"subject": _subject(result), "policy": policy.get("path") or policy.get("file"),
                           "policy_sha256": policy.get("sha256")}}]}
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def write_exports(result: Mapping[str, Any], results_file: Path, *, junit: str | None, sarif: str | None) -> list[Path]:
    """Write the requested exports of ``result`` (already written to ``results_file``), each atomically
    (a temporary file beside it, then a rename); returns the paths written."""
    digest = hashlib.sha256(results_file.read_bytes()).hexdigest()
    texts = []
    if junit:
        texts.append(("--junit", Path(junit), junit_xml(result, results_path=str(results_file), results_sha256=digest)))
    if sarif:
        uri = Path(os.path.relpath(results_file.resolve(), Path(sarif).resolve().parent)).as_posix()
        texts.append(("--sarif", Path(sarif), sarif_json(result, results_uri=quote(uri), results_sha256=digest)))
    written = []
    for option, path, text in texts:
        try:
            written.append(write_file(path, text))
        except OSError as exc:
            raise AuditInputError(f"{option}: cannot write {path} ({exc.strerror or exc})") from None
    return written
