"""Turn a stored gate snapshot into the sentences, lights and table rows a page shows.

Pure: no Django. Reads the snapshot's JSON only, so an evaluation stored long ago reads
the same as a new one, whatever the rules have become since.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

ANYTIME_VALID, FIXED_SAMPLE = "anytime_valid", "fixed_sample"
# The needs estimate stops at a million: beyond that the rate sits on the line.
NEEDS_HORIZON = 1_000_000
MAX_LABELS_NAMED = 10
MINUS = "\u2212"  # a true minus sign lines up with the plus in a column of figures

LIGHTS = {"pass": "good", "fail": "bad", "insufficient": "none", "off": "off"}
VERDICT_WORDS = {
    "pass": "pass",
    "fail": "fail",
    "insufficient": "not enough evidence",
    "off": "off",
}
TITLES = {
    "sample_size": "Judged items",
    "noninferiority": "Non-inferiority to the inspectors",
    "agreement_floor": "Agreement with the inspectors",
    "kappa_floor": "Cohen's kappa",
    "per_label_recall": "Recall of the weakest label",
    "drift": "Input drift (largest PSI)",
    "error_rate": "Prediction error rate",
    "latency_p95": "Latency p95",
    "int8_parity": "INT8 parity with its FP32 parent",
}
# The same names inside a sentence.
PHRASES = {
    "sample_size": "judged items",
    "noninferiority": "non-inferiority",
    "agreement_floor": "agreement",
    "kappa_floor": "Cohen's kappa",
    "per_label_recall": "per-label recall",
    "drift": "drift",
    "error_rate": "error rate",
    "latency_p95": "latency",
    "int8_parity": "INT8 parity",
}
# How each criterion compares its figure with the threshold, as the rules decide it.
COMPARISONS = {
    "sample_size": "≥",
    "noninferiority": "≥",
    "agreement_floor": "≥",
    "kappa_floor": "≥",
    "per_label_recall": "≥",
    "drift": "<",
    "error_rate": "≤",
    "latency_p95": "≤",
    "int8_parity": "≥",
}
BOUND_NAMES = {
    ANYTIME_VALID: "anytime-valid confidence sequence",
    FIXED_SAMPLE: "fixed-sample interval",
}


@dataclass(frozen=True)
class CriterionRow:
    """One line of the criteria table, every figure already written out."""

    name: str
    title: str
    verdict: str
    verdict_text: str
    light: str
    value: str
    lower: str
    upper: str
    threshold: str
    other_interval: str
    bounded: bool
    method: str
    detail: str


@dataclass(frozen=True)
class GateDisplay:
    """What a page shows of one evaluation."""

    verdict: str
    light: str
    headline: str
    rows: tuple[CriterionRow, ...]
    bounds_used: str
    bounds_used_text: str
    other_bounds_text: str
    confidence_text: str
    needs_text: str
    policy_version: int | None
    since: str
    until: str
    days: int | None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def figure_text(name: str, value: Any) -> str:
    """Return one figure of a criterion as people read it; a sentence when it is missing."""
    number = _number(value)
    if number is None:
        return "no data"
    if name == "sample_size":
        return f"{round(number):,}"
    if name == "error_rate":
        return f"{number:.2%}"
    if name == "latency_p95":
        return f"{number:.1f} ms"
    if name == "noninferiority":
        return f"{number:+.3f}".replace("-", MINUS)
    if name == "int8_parity":
        return f"{number:.4f}"
    return f"{number:.3f}"


def _threshold_text(name: str, threshold: Any) -> str:
    number = _number(threshold)
    if number is None:
        return "none"
    return f"{COMPARISONS.get(name, '')} {figure_text(name, number)}".strip()


def _interval_text(name: str, criterion: dict[str, Any] | None) -> str:
    if criterion is None:
        return "no bound"
    lower, upper = _number(criterion.get("lower")), _number(criterion.get("upper"))
    if lower is None or upper is None:
        return "no data"
    return f"[{figure_text(name, lower)}, {figure_text(name, upper)}]"


def _bound_text(name: str, value: Any, bounded: bool) -> str:
    if not bounded:
        return "no bound"
    return figure_text(name, value)


def _row(criterion: dict[str, Any], other: dict[str, dict[str, Any]]) -> CriterionRow:
    name = str(criterion.get("name", ""))
    verdict = str(criterion.get("verdict", "insufficient"))
    bounded = name in other
    if verdict == "off":
        figures = {"value": "off", "lower": "off", "upper": "off", "threshold": "off"}
        other_interval = "off"
    else:
        figures = {
            "value": figure_text(name, criterion.get("value")),
            "lower": _bound_text(name, criterion.get("lower"), bounded),
            "upper": _bound_text(name, criterion.get("upper"), bounded),
            "threshold": _threshold_text(name, criterion.get("threshold")),
        }
        other_interval = _interval_text(name, other.get(name))
    return CriterionRow(
        name=name,
        title=TITLES.get(name, name.replace("_", " ")),
        verdict=verdict,
        verdict_text=VERDICT_WORDS.get(verdict, verdict),
        light=LIGHTS.get(verdict, "none"),
        other_interval=other_interval,
        bounded=bounded,
        method=str(criterion.get("method") or ""),
        detail=str(criterion.get("detail") or ""),
        **figures,
    )


def _headline(verdict: str, rows: tuple[CriterionRow, ...]) -> str:
    def named(wanted: str) -> str:
        return ", ".join(PHRASES.get(row.name, row.title) for row in rows if row.verdict == wanted)

    if verdict == "pass":
        return "Passes the gate: every criterion that is on clears its threshold."
    if verdict == "fail":
        return f"Fails the gate on {named('fail')}."
    return f"Not enough evidence to decide yet on {named('insufficient')}."


def _count(number: int, noun: str) -> str:
    if number >= NEEDS_HORIZON:
        return f"over a million more {noun} (at the current rates the bound sits on the line)"
    return f"about {number:,} more {noun}"


def needs_sentence(needs: dict[str, Any] | None) -> str:
    """Return how many more judged items the gate needs, as one sentence."""
    needs = needs or {}
    judged = int(_number(needs.get("judged_items")) or 0)
    double = int(_number(needs.get("double_inspected")) or 0)
    labels = needs.get("per_label") or {}
    per_label = {str(label): int(_number(more) or 0) for label, more in labels.items()}
    short = sorted(((more, label) for label, more in per_label.items() if more > 0), reverse=True)
    parts = []
    if judged:
        parts.append(_count(judged, "judged items"))
    if double:
        parts.append(_count(double, "double-inspected items"))
    for more, label in short[:MAX_LABELS_NAMED]:
        parts.append(
            f"label {label} needs {more:,} more"
            if more < NEEDS_HORIZON
            else f"label {label} needs over a million more"
        )
    if len(short) > MAX_LABELS_NAMED:
        parts.append(f"and {len(short) - MAX_LABELS_NAMED} more labels need more items")
    if not parts:
        return "The sample is large enough: no criterion is waiting for more judged items."
    return (
        "To decide, the gate needs "
        + ", ".join(parts)
        + "; estimated from the current rates, so a change in them changes the estimate."
    )


def gate_display(snapshot: dict[str, Any]) -> GateDisplay:
    """Return the page's view of a stored evaluation snapshot."""
    bounds_used = str(snapshot.get("bounds_used") or ANYTIME_VALID)
    other_kind = FIXED_SAMPLE if bounds_used == ANYTIME_VALID else ANYTIME_VALID
    bounds = snapshot.get("bounds") or {}
    other = {str(c.get("name")): c for c in bounds.get(other_kind) or []}
    rows = tuple(_row(criterion, other) for criterion in snapshot.get("criteria") or [])
    verdict = str(snapshot.get("verdict") or "insufficient")
    policy = snapshot.get("policy") or {}
    window = snapshot.get("window") or {}
    confidence = _number(policy.get("confidence"))
    version = policy.get("version")
    days = window.get("days")
    return GateDisplay(
        verdict=verdict,
        light=LIGHTS.get(verdict, "none"),
        headline=_headline(verdict, rows),
        rows=rows,
        bounds_used=bounds_used,
        bounds_used_text=BOUND_NAMES.get(bounds_used, bounds_used),
        other_bounds_text=BOUND_NAMES.get(other_kind, other_kind),
        confidence_text=f"{confidence * 100:g}%" if confidence is not None else "the policy's",
        needs_text=needs_sentence(snapshot.get("needs")),
        policy_version=version if isinstance(version, int) else None,
        since=str(window.get("since") or ""),
        until=str(window.get("until") or ""),
        days=days if isinstance(days, int) else None,
    )
