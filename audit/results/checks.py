"""A policy check record read the same way whatever version of the policy code wrote it.

Older results carry ``verdict`` (PASS / FAIL) with ``bound`` and ``limit``; newer ones add ``outcome``
(PASS / FAIL / NOT EVALUATED, with a ``reason``), ``threshold`` (e.g. "≤ 0.05"), ``ci``, ``unit``,
``rationale`` and ``source``. The exports and the baseline diff read checks only through :func:`check_view`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

OUTCOMES = ("PASS", "FAIL", "NOT EVALUATED")


@dataclass(frozen=True)
class CheckView:
    """One policy check as the exports and the baseline diff need it."""

    name: str
    probeset: str
    metric: str
    outcome: str  # PASS | FAIL | NOT EVALUATED
    value: float | None
    ci: tuple[float, float] | None
    unit: str | None
    threshold: str  # e.g. "≤ 50"
    reason: str | None  # why a check was NOT EVALUATED
    rationale: str | None
    source: str | None


def _threshold(record: Mapping[str, Any]) -> str:
    if isinstance(record.get("threshold"), str) and record["threshold"].strip():
        return record["threshold"]
    if "limit" in record and record.get("bound") in ("max", "min"):
        return f"{'≤' if record['bound'] == 'max' else '≥'} {record['limit']:g}"
    return "?"


def _outcome(record: Mapping[str, Any]) -> str:
    outcome = record.get("outcome") or record.get("verdict")
    if outcome in OUTCOMES:
        return outcome
    if "passed" in record and isinstance(record["passed"], bool):
        return "PASS" if record["passed"] else "FAIL"
    return "NOT EVALUATED"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) is not None for v in value):
        return float(value[0]), float(value[1])
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def check_view(record: Mapping[str, Any]) -> CheckView:
    """The fields of one policy check record, with today's and the extended keys alike."""
    probeset = str(record.get("probeset", ""))
    metric = str(record.get("metric", ""))
    return CheckView(name=str(record.get("name") or f"{probeset}: {metric}"), probeset=probeset, metric=metric,
                     outcome=_outcome(record), value=_number(record.get("value")), ci=_interval(record.get("ci")),
                     unit=_text(record.get("unit")), threshold=_threshold(record), reason=_text(record.get("reason")),
                     rationale=_text(record.get("rationale")), source=_text(record.get("source")))


def policy_checks(result: Mapping[str, Any]) -> list[CheckView] | None:
    """The result's policy checks, or None when it carries no policy block."""
    policy = result.get("policy")
    if not isinstance(policy, Mapping):
        return None
    checks: Sequence[Any] = policy.get("checks") or []
    return [check_view(c) for c in checks if isinstance(c, Mapping)]


def describe_value(check: CheckView, digits: int = 4) -> str:
    """``12 neurons (95% CI 10 to 14)``: the measured value with its unit and interval, as plain text."""
    if check.value is None:
        return "no value"
    text = f"{check.value:.{digits}g}"
    if check.unit:
        text += f" {check.unit}"
    if check.ci is not None:
        text += f" (95% CI {check.ci[0]:.{digits}g} to {check.ci[1]:.{digits}g})"
    return text
