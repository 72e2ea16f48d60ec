"""Confidence and operations reports from binned counts (no Django import)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.stats.agreement import wilson_interval
from analytics.stats.calibration import (
    HISTOGRAM_BINS,
    confidence_histogram_from_counts,
    coverage_curve_from_counts,
    merge_confidence_bins,
    reliability_from_counts,
)
from analytics.stats.calibration_check import calibration_check_from_counts
from analytics.stats.counts import (
    BINS_PER_DECADE,
    LAG_EDGES_SECONDS,
    LATENCY_EDGES_MS,
    PeriodCounts,
    percentile_from_histogram,
)
from analytics.stats.quantile_interval import (
    QUANTILE_INTERVAL_METHOD,
    percentile_interval_from_histogram,
)
from analytics.summaries.agreement import RULES
from analytics.summaries.deferral import DeferralReport
from analytics.summaries.headlines import HEADLINE_RULE, FigureLight, figure_light

COVERAGE_THRESHOLDS = np.arange(100) / 100
PERCENTILE_METHOD = (
    f"read from log-spaced histograms ({BINS_PER_DECADE} bins per decade), interpolating "
    "linearly in log space inside the bin holding the rank: within one bin (12%) of exact"
)


@dataclass(frozen=True)
class ConfidenceReport:
    """Confidence split by agreement, the reliability diagram, ECE and the coverage curve."""

    rule_text: str
    n: int
    histogram_edges: list[float]
    histogram_agreed: list[int]
    histogram_disagreed: list[int]
    reliability_edges: list[float]
    reliability_count: list[int]
    reliability_mean_confidence: list[float]
    reliability_accuracy: list[float]
    expected_calibration_error: float
    ece_method: str
    # What a perfectly calibrated model shows on the same bins and n (simulated): its mean
    # ECE and 5%-95% range, and the bounds of this model's excess over it.
    ece_if_calibrated: float
    ece_if_calibrated_low: float
    ece_if_calibrated_high: float
    ece_excess_low: float
    ece_excess_high: float
    ece_check_method: str
    ece_light: FigureLight
    coverage_thresholds: list[float]
    coverage_items: list[int]
    coverage_share: list[float]
    coverage_agreement: list[float]
    coverage_low: list[float]
    coverage_high: list[float]
    empty_reason: str
    # The queue's deferral threshold on these items, and the thresholds suggested.
    deferral: DeferralReport | None = None


def confidence_summary(*, total: PeriodCounts) -> ConfidenceReport:
    """Return the confidence report: 'correct' means the model agreed with the human decision."""
    assert total.reliability is not None and total.coverage is not None
    reliability = reliability_from_counts(total.reliability)
    histogram = confidence_histogram_from_counts(
        merge_confidence_bins(total.coverage, HISTOGRAM_BINS)
    )
    curve = coverage_curve_from_counts(total.coverage, COVERAGE_THRESHOLDS)
    check = calibration_check_from_counts(total.reliability)
    return ConfidenceReport(
        rule_text=RULES["consensus"],
        n=total.coverage.n,
        histogram_edges=histogram.edges.tolist(),
        histogram_agreed=histogram.agreed.tolist(),
        histogram_disagreed=histogram.disagreed.tolist(),
        reliability_edges=reliability.edges.tolist(),
        reliability_count=reliability.count.tolist(),
        reliability_mean_confidence=reliability.mean_confidence.tolist(),
        reliability_accuracy=reliability.accuracy.tolist(),
        expected_calibration_error=reliability.expected_calibration_error,
        ece_method="10 equal-width bins closed on the right, as scikit-learn's calibration_curve",
        ece_if_calibrated=check.expected_if_calibrated,
        ece_if_calibrated_low=check.low_if_calibrated,
        ece_if_calibrated_high=check.high_if_calibrated,
        ece_excess_low=check.excess_low,
        ece_excess_high=check.excess_high,
        ece_check_method=check.method,
        # calibration_light's rule (a test holds them equal), with its sentence.
        ece_light=figure_light(
            HEADLINE_RULE["ece"], low=check.excess_low, high=check.excess_high, n=check.n
        ),
        coverage_thresholds=curve.thresholds.tolist(),
        coverage_items=curve.covered.tolist(),
        coverage_share=curve.coverage.tolist(),
        coverage_agreement=curve.agreement_rate.tolist(),
        coverage_low=curve.low.tolist(),
        coverage_high=curve.high.tolist(),
        empty_reason=""
        if total.coverage.n
        else (
            "No scored item in this range has a complete, unanimous human decision yet, so "
            "there is nothing to calibrate against."
        ),
    )


@dataclass(frozen=True)
class Percentiles:
    """p50, p95 and p99 of a histogram, with its counts for a chart."""

    n: int
    p50: float
    p95: float
    p99: float
    edges: list[float]
    counts: list[int]
    p95_low: float
    p95_high: float


def percentiles(counts: np.ndarray, edges: np.ndarray) -> Percentiles:
    """Return p50, p95 and p99 read off a log-binned histogram, p95 with its interval."""
    p95 = percentile_interval_from_histogram(counts, edges, 95)
    return Percentiles(
        n=int(counts.sum()),
        p50=percentile_from_histogram(counts, edges, 50),
        p95=percentile_from_histogram(counts, edges, 95),
        p99=percentile_from_histogram(counts, edges, 99),
        edges=edges.tolist(),
        counts=counts.tolist(),
        p95_low=p95.low,
        p95_high=p95.high,
    )


@dataclass(frozen=True)
class ClassChange:
    """How often one label was given by this version and by the other, on the same items."""

    label: str
    this_version: int
    other_version: int
    changed_away: int
    changed_to: int


@dataclass(frozen=True)
class VariantComparison:
    """This version against a related one (FP32 parent or INT8 variant) on the same items."""

    other: str
    n: int
    flips: int
    flip_rate: float
    low: float
    high: float
    classes: list[ClassChange]


@dataclass(frozen=True)
class ErrorReason:
    """How many predictions failed for one kind of reason."""

    kind: str
    count: int


@dataclass(frozen=True)
class OperationsReport:
    """Latency per backend, error rate and reasons, scoring lag, FP32 versus INT8."""

    predictions: int
    errors: int
    error_rate: float
    error_low: float
    error_high: float
    reasons: list[ErrorReason]
    percentile_method: str
    latency_ms: dict[str, Percentiles]
    lag_seconds: Percentiles
    variants: list[VariantComparison]
    p95_interval_method: str
    error_light: FigureLight
    latency_light: FigureLight
    # The backend whose p95 the latency light reads (the slowest), "" with no timings.
    slowest_backend: str
    empty_reason: str


def operations_summary(*, total: PeriodCounts, labels: Sequence[str]) -> OperationsReport:
    """Return the operations report of a period's counts."""
    predictions = total.scored_ok + total.scored_error
    low, high = wilson_interval(total.scored_error, predictions)
    variants = []
    for other, table in sorted(total.variants.items()):
        n = int(table.sum())
        flips = n - int(np.trace(table))
        flip_low, flip_high = wilson_interval(flips, n)
        mine, theirs = table.sum(axis=1), table.sum(axis=0)
        diagonal = np.diag(table)
        variants.append(
            VariantComparison(
                other=other,
                n=n,
                flips=flips,
                flip_rate=flips / n if n else math.nan,
                low=flip_low,
                high=flip_high,
                classes=[
                    ClassChange(
                        label=label,
                        this_version=int(mine[i]),
                        other_version=int(theirs[i]),
                        changed_away=int(mine[i] - diagonal[i]),
                        changed_to=int(theirs[i] - diagonal[i]),
                    )
                    for i, label in enumerate(labels)
                ],
            )
        )
    latency = {b: percentiles(c, LATENCY_EDGES_MS) for b, c in sorted(total.latency.items())}
    timed = {b: p for b, p in latency.items() if p.n}
    slowest = max(timed, key=lambda b: timed[b].p95, default="")
    return OperationsReport(
        predictions=predictions,
        errors=total.scored_error,
        error_rate=total.scored_error / predictions if predictions else math.nan,
        error_low=low,
        error_high=high,
        reasons=[
            ErrorReason(kind, count)
            for kind, count in sorted(total.errors.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        percentile_method=PERCENTILE_METHOD,
        latency_ms=latency,
        lag_seconds=percentiles(total.lag, LAG_EDGES_SECONDS),
        variants=variants,
        p95_interval_method=QUANTILE_INTERVAL_METHOD,
        error_light=figure_light(HEADLINE_RULE["error_rate"], low=low, high=high, n=predictions),
        latency_light=figure_light(
            HEADLINE_RULE["latency_p95"],
            low=timed[slowest].p95_low if slowest else math.nan,
            high=timed[slowest].p95_high if slowest else math.nan,
            n=timed[slowest].n if slowest else 0,
        ),
        slowest_backend=slowest,
        empty_reason=""
        if predictions
        else "This version has made no prediction on items received in this range.",
    )
