"""Charts of the confidence and operations reports."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import plotly.graph_objects as go

from analytics.charts.base import (
    BAD,
    GOOD,
    HUMAN,
    MODEL,
    SECOND,
    WARN,
    Chart,
    Figure,
    axis_titled,
    chart_empty,
    figure_build,
    finite_all,
    interval_errors,
)
from analytics.summaries.confidence import ConfidenceReport, OperationsReport


def _centres(edges: Sequence[float]) -> list[float]:
    return [(a + b) / 2 for a, b in itertools.pairwise(edges)]


def confidence_charts(report: ConfidenceReport) -> list[Chart]:
    """Return confidence histograms by agreement, the reliability diagram, the coverage curve."""
    if report.n == 0:
        return [
            chart_empty(
                "chart-confidence-histogram",
                "Confidence when the model agreed and disagreed",
                report.empty_reason,
            ),
            chart_empty("chart-reliability", "Reliability diagram", report.empty_reason),
            chart_empty("chart-coverage", "Coverage curve", report.empty_reason),
        ]
    histogram = _histogram_figure(report)
    reliability = _reliability_figure(report)
    coverage = _coverage_figure(report)
    return [
        Chart(
            "chart-confidence-histogram",
            "Confidence when the model agreed and disagreed",
            report.rule_text,
            histogram,
        ),
        Chart(
            "chart-reliability",
            "Reliability diagram",
            f"Expected calibration error {report.expected_calibration_error:.3f} "
            f"({report.ece_method}); a perfectly calibrated model shows "
            f"{report.ece_if_calibrated:.3f} on average at this n "
            f"({report.ece_if_calibrated_low:.3f} to {report.ece_if_calibrated_high:.3f}, 5% to "
            "95%), because ECE is biased upward on few items.",
            reliability,
        ),
        Chart(
            "chart-coverage",
            "Coverage curve",
            "For each threshold: the share of items at or above it, and the model's agreement "
            "with the human decision on them.",
            coverage,
        ),
    ]


def _histogram_figure(report: ConfidenceReport) -> Figure:
    """Return the histogram of the model's confidence."""
    centres = _centres(report.histogram_edges)
    width = report.histogram_edges[1] - report.histogram_edges[0]
    return figure_build(
        [
            go.Bar(
                x=centres, y=counts, width=width, name=name, marker={"color": color}, opacity=0.75
            )
            for name, color, counts in (
                ("model agreed with the human", GOOD, report.histogram_agreed),
                ("model disagreed", BAD, report.histogram_disagreed),
            )
        ],
        {
            "barmode": "overlay",
            "xaxis": axis_titled("Model confidence (top-class probability)", range=[0, 1]),
            "yaxis": axis_titled("Items (count)"),
        },
    )


def _reliability_figure(report: ConfidenceReport) -> Figure:
    """Return the reliability diagram: agreement against confidence per bin."""
    return figure_build(
        [
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="perfect calibration",
                line={"color": HUMAN, "dash": "dash"},
            ),
            go.Scatter(
                x=finite_all(report.reliability_mean_confidence),
                y=finite_all(report.reliability_accuracy),
                customdata=report.reliability_count,
                mode="lines+markers",
                name="model",
                line={"color": MODEL},
                hovertemplate="confidence %{x:.2f}: agreement %{y:.1%} "
                "(%{customdata} items)<extra></extra>",
            ),
        ],
        {
            "xaxis": axis_titled("Mean confidence in bin", range=[0, 1]),
            "yaxis": axis_titled("Agreement with humans (share)", range=[0, 1.02]),
        },
    )


def _coverage_figure(report: ConfidenceReport) -> Figure:
    """Return the share the model would decide alone, and its agreement, per threshold."""
    return figure_build(
        [
            go.Scatter(
                x=report.coverage_thresholds,
                y=finite_all(report.coverage_share),
                mode="lines",
                name="items the model would decide alone",
                line={"color": HUMAN},
            ),
            go.Scatter(
                x=report.coverage_thresholds,
                y=finite_all(report.coverage_high),
                mode="lines",
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
            ),
            go.Scatter(
                x=report.coverage_thresholds,
                y=finite_all(report.coverage_low),
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(37, 87, 167, 0.18)",
                name="95% Wilson interval",
                hoverinfo="skip",
            ),
            go.Scatter(
                x=report.coverage_thresholds,
                y=finite_all(report.coverage_agreement),
                mode="lines",
                name="agreement on those items",
                line={"color": MODEL},
            ),
        ],
        {
            "xaxis": axis_titled("Confidence threshold", range=[0, 1]),
            "yaxis": axis_titled("Share", range=[0, 1.02], tickformat=".0%"),
        },
    )


def operations_charts(report: OperationsReport) -> list[Chart]:
    """Return latency percentiles per backend, error reasons, scoring lag, FP32/INT8 flips."""
    lag = report.lag_seconds
    charts = [
        Chart(
            "chart-latency",
            "Latency percentiles per backend",
            f"Percentiles {report.percentile_method}. Error bars on p95: "
            f"{report.p95_interval_method}.",
            _latency_figure(report),
        )
        if any(p.n for p in report.latency_ms.values())
        else chart_empty(
            "chart-latency",
            "Latency percentiles per backend",
            report.empty_reason or "No prediction in this range recorded its latency.",
        ),
        Chart(
            "chart-errors",
            "Error reasons",
            f"{report.errors} of {report.predictions} predictions failed.",
            _reasons_figure(report),
        )
        if report.reasons
        else chart_empty(
            "chart-errors",
            "Error reasons",
            report.empty_reason or f"No prediction failed: all {report.predictions} succeeded.",
        ),
        Chart(
            "chart-lag",
            "Scoring lag",
            f"p50 {lag.p50:.2f} s, p95 {lag.p95:.2f} s, p99 {lag.p99:.2f} s.",
            _lag_figure(report),
        )
        if lag.n
        else chart_empty(
            "chart-lag",
            "Scoring lag",
            report.empty_reason or "No prediction in this range recorded when it was stored.",
        ),
    ]
    for number, variant in enumerate(report.variants):
        if variant.n == 0:
            charts.append(
                chart_empty(
                    f"chart-variant-{number}",
                    f"Decision flips against {variant.other}",
                    f"No item in this range was scored by both this version and {variant.other}.",
                )
            )
            continue
        figure = figure_build(
            [
                go.Bar(
                    x=[c.label for c in variant.classes],
                    y=[getattr(c, name) for c in variant.classes],
                    name=text,
                    marker={"color": color},
                )
                for name, text, color in (
                    ("changed_away", "this version's label, changed by the other", MODEL),
                    ("changed_to", "the other version's label, changed from this", SECOND),
                )
            ],
            {
                "barmode": "group",
                "xaxis": axis_titled("Label", type="category"),
                "yaxis": axis_titled("Items whose label flipped (count)", rangemode="tozero"),
            },
        )
        charts.append(
            Chart(
                f"chart-variant-{number}",
                f"Decision flips against {variant.other}",
                f"{variant.flips} of {variant.n} items flipped ({variant.flip_rate:.2%}, 95% "
                f"interval {variant.low:.2%} to {variant.high:.2%}).",
                figure,
            )
        )
    return charts


def _latency_figure(report: OperationsReport) -> Figure:
    """Return the latency percentiles (p50, p95, p99) per backend."""
    backends = [b for b, p in report.latency_ms.items() if p.n]
    p95 = [report.latency_ms[b] for b in backends]
    return figure_build(
        [
            go.Bar(
                x=backends,
                y=finite_all([getattr(report.latency_ms[b], name) for b in backends]),
                name=name,
                marker={"color": color},
                error_y=interval_errors(
                    [p.p95 for p in p95], [p.p95_low for p in p95], [p.p95_high for p in p95]
                )
                if name == "p95"
                else None,
            )
            for name, color in (("p50", GOOD), ("p95", WARN), ("p99", BAD))
        ],
        {
            "barmode": "group",
            "xaxis": axis_titled("Inference backend", type="category"),
            "yaxis": axis_titled("Latency per item (ms)", rangemode="tozero"),
        },
    )


def _reasons_figure(report: OperationsReport) -> Figure:
    """Return the scoring errors per kind of reason."""
    return figure_build(
        [
            go.Bar(
                x=[r.count for r in report.reasons],
                y=[r.kind for r in report.reasons],
                orientation="h",
                marker={"color": BAD},
                name="errors",
            )
        ],
        {
            "xaxis": axis_titled("Failed predictions (count)", rangemode="tozero"),
            "yaxis": axis_titled("Reason", type="category", autorange="reversed"),
        },
    )


def _lag_figure(report: OperationsReport) -> Figure:
    """Return the histogram of scoring lag after arrival."""
    lag = report.lag_seconds
    shown = [i for i, c in enumerate(lag.counts) if c > 0]
    low, high = (shown[0], shown[-1] + 1) if shown else (0, len(lag.counts))
    return figure_build(
        [
            go.Bar(
                x=_centres(lag.edges[low : high + 1]),
                y=lag.counts[low:high],
                marker={"color": MODEL},
                name="predictions",
            )
        ],
        {
            "xaxis": axis_titled(
                "Scoring lag, received to prediction stored (s, log scale)", type="log"
            ),
            "yaxis": axis_titled("Predictions (count)"),
            "bargap": 0.05,
        },
    )
