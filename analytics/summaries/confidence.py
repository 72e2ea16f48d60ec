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
from analytics.stats.counts import (
    BINS_PER_DECADE,
    LAG_EDGES_SECONDS,
    LATENCY_EDGES_MS,
    PeriodCounts,
    percentile_from_histogram,
)
from analytics.summaries.agreement import RULES

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
    coverage_thresholds: list[float]
    coverage_items: list[int]
    coverage_share: list[float]
    coverage_agreement: list[float]
    coverage_low: list[float]
    coverage_high: list[float]


def confidence_summary(*, total: PeriodCounts) -> ConfidenceReport:
    """Return the confidence report: 'correct' means the model agreed with the human decision."""
    assert total.reliability is not None and total.coverage is not None
    reliability = reliability_from_counts(total.reliability)
    histogram = confidence_histogram_from_counts(
        merge_confidence_bins(total.coverage, HISTOGRAM_BINS)
    )
    curve = coverage_curve_from_counts(total.coverage, COVERAGE_THRESHOLDS)
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
        coverage_thresholds=curve.thresholds.tolist(),
        coverage_items=curve.covered.tolist(),
        coverage_share=curve.coverage.tolist(),
        coverage_agreement=curve.agreement_rate.tolist(),
        coverage_low=curve.low.tolist(),
        coverage_high=curve.high.tolist(),
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


def percentiles(counts: np.ndarray, edges: np.ndarray) -> Percentiles:
    """Return p50, p95 and p99 read off a log-binned histogram."""
    return Percentiles(
        n=int(counts.sum()),
        p50=percentile_from_histogram(counts, edges, 50),
        p95=percentile_from_histogram(counts, edges, 95),
        p99=percentile_from_histogram(counts, edges, 99),
        edges=edges.tolist(),
        counts=counts.tolist(),
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
        latency_ms={b: percentiles(c, LATENCY_EDGES_MS) for b, c in sorted(total.latency.items())},
        lag_seconds=percentiles(total.lag, LAG_EDGES_SECONDS),
        variants=variants,
    )
