"""Headline figures of a model version and their traffic lights (no Django import)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

Light = Literal["good", "warn", "bad", "none"]


@dataclass(frozen=True)
class HeadlineRule:
    """When a headline figure is green, amber or red.

    ``higher_is_better`` figures are green at or above ``good`` and amber at or above
    ``warn``; the others are green at or below ``good`` and amber at or below ``warn``.
    """

    key: str
    name: str
    unit: str
    higher_is_better: bool
    good: float
    warn: float
    why: str

    def light(self, value: float | None) -> Light:
        """Return the traffic light of a value of this figure."""
        if value is None or not math.isfinite(value):
            return "none"
        if self.higher_is_better:
            return "good" if value >= self.good else "warn" if value >= self.warn else "bad"
        return "good" if value <= self.good else "warn" if value <= self.warn else "bad"

    @property
    def rule_text(self) -> str:
        """Return the thresholds in words, for the page's legend."""
        word = "at least" if self.higher_is_better else "at most"
        return f"green {word} {self.good:g}{self.unit}, amber {word} {self.warn:g}{self.unit}"


# The defaults shown on the overview. Agreement and kappa follow the inspectors' own
# double-inspection agreement on the demo queue (about 0.95); kappa bands are Landis and
# Koch's (1977) "almost perfect" (0.81) and "substantial" (0.61); ECE 0.05 is a calibration
# error a deferral threshold can absorb; latency is the per-item shadow budget.
HEADLINE_RULES: tuple[HeadlineRule, ...] = (
    HeadlineRule(
        "agreement",
        "Agreement with inspectors",
        "",
        True,
        0.95,
        0.90,
        "share of judgments the model's label matches (each judgment counts)",
    ),
    HeadlineRule(
        "kappa",
        "Cohen's kappa",
        "",
        True,
        0.81,
        0.61,
        "chance-corrected agreement; Landis and Koch bands",
    ),
    HeadlineRule(
        "error_rate",
        "Prediction error rate",
        "",
        False,
        0.01,
        0.05,
        "share of predictions that failed",
    ),
    HeadlineRule(
        "drifted_share",
        "Drifted-feature share",
        "",
        False,
        0.05,
        0.20,
        "share of features past a PSI line or flagged by KS",
    ),
    HeadlineRule(
        "ece",
        "Expected calibration error",
        "",
        False,
        0.05,
        0.10,
        "gap between confidence and agreement, 10 bins",
    ),
    HeadlineRule(
        "latency_p95",
        "Latency p95",
        " ms",
        False,
        50.0,
        200.0,
        "95th percentile of inference time per item, slowest backend",
    ),
)


@dataclass(frozen=True)
class Headline:
    """One figure of one model version, its interval where it has one, and its light."""

    rule: HeadlineRule
    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0

    @property
    def light(self) -> Light:
        return self.rule.light(self.value)


def finite_or_none(value: float | None) -> float | None:
    """Return value, or None for NaN and infinities (no data)."""
    return value if value is not None and math.isfinite(value) else None
