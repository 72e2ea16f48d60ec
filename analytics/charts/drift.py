"""Charts of the drift report."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import plotly.graph_objects as go

from analytics.charts.base import (
    BAD,
    HUMAN,
    MODEL,
    WARN,
    Chart,
    Figure,
    axis_titled,
    chart_empty,
    day_axis,
    figure_build,
    finite_all,
)
from analytics.stats.drift_window import WINDOW_ALPHA_SHARE
from analytics.summaries.drift import DriftReport, FeatureDistributions
from analytics.summaries.drift_parts import PredictionDrift


def _line(y: float, color: str, label: str) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "y0": y,
        "y1": y,
        "line": {"color": color, "dash": "dash", "width": 1.5},
        "label": {"text": label, "textposition": "end", "font": {"color": color, "size": 11}},
    }


def drift_charts(report: DriftReport) -> list[Chart]:
    """Return per-feature PSI, drift per day, the top features' distributions, label drift.

    An unavailable report has no chart: the page says why in its place.
    """
    if not report.available:
        return []
    charts = [
        Chart(
            "chart-psi",
            "Smoothed PSI per feature",
            f"{report.psi_method}. Colour: drift level ({report.level_rule}). Dashes: the "
            "value smoothed PSI passes with no drift in "
            f"{report.thresholds.ks_alpha * WINDOW_ALPHA_SHARE:.2%} of windows of this size, "
            "shared among the features (Bonferroni).",
            _psi_figure(report),
        ),
        _days_chart(report),
    ]
    charts.extend(_feature_chart(top) for top in report.top)
    if report.prediction is not None:
        charts.append(_prediction_chart(report.prediction))
    else:
        charts.append(
            chart_empty(
                "chart-prediction-drift",
                "Prediction drift",
                "No predicted labels to compare: the reference profile or this range has none.",
            )
        )
    return charts


def _psi_figure(report: DriftReport) -> Figure:
    """Return the PSI bar per feature, coloured by drift level, with its critical value."""
    thresholds = report.thresholds
    colors = {"major": BAD, "moderate": WARN}
    names = [f"f{f.index}" for f in report.features]
    return figure_build(
        [
            go.Bar(
                x=names,
                y=finite_all([f.psi for f in report.features]),
                marker={"color": [colors.get(f.level, MODEL) for f in report.features]},
                customdata=[
                    [f.psi_critical, f.test_p_adjusted, f.test_method, f.level]
                    for f in report.features
                ],
                hovertemplate="%{x}: PSI %{y:.3f} (critical %{customdata[0]:.3f})<br>"
                "test %{customdata[2]}, adjusted p %{customdata[1]:.2g}<br>"
                "%{customdata[3]}<extra></extra>",
                name="smoothed PSI",
            ),
            go.Scatter(
                x=names,
                y=finite_all([f.psi_critical for f in report.features]),
                mode="markers",
                marker={"color": HUMAN, "symbol": "line-ew-open", "size": 10},
                name="no-drift critical value",
                hoverinfo="skip",
            ),
        ],
        {
            "height": 400,
            "xaxis": axis_titled("Feature", type="category", tickangle=-90, tickfont={"size": 10}),
            "yaxis": axis_titled("Smoothed population stability index (PSI)"),
            "shapes": [
                _line(thresholds.psi_moderate, WARN, f"moderate {thresholds.psi_moderate:g}"),
                _line(thresholds.psi_major, BAD, f"major {thresholds.psi_major:g}"),
            ],
        },
    )


def _report_days(report: DriftReport) -> list[date]:
    """Return every day of the report's range, so the axis covers the range chosen."""
    if report.first_day is None or report.last_day is None:
        return [d.day for d in report.days]
    span = (report.last_day - report.first_day).days
    return [report.first_day + timedelta(days=n) for n in range(span + 1)]


def _days_chart(report: DriftReport) -> Chart:
    """Return the drifted-feature share and the largest PSI of each day."""
    if not report.days:
        return chart_empty(
            "chart-drift-days", "Drift per day", "No day in this range has scored items."
        )
    figure = figure_build(
        [
            go.Scatter(
                x=[d.day.isoformat() for d in report.days],
                y=finite_all([d.drifted_share for d in report.days]),
                customdata=[d.n for d in report.days],
                mode="lines+markers",
                name="share of features drifted beyond noise",
                line={"color": BAD},
                hovertemplate="%{x}: %{y:.0%} of features (%{customdata} items)<extra></extra>",
            ),
            go.Scatter(
                x=[d.day.isoformat() for d in report.days],
                y=finite_all([d.max_psi for d in report.days]),
                mode="lines+markers",
                name="largest smoothed PSI",
                yaxis="y2",
                line={"color": MODEL, "dash": "dot"},
            ),
        ],
        {
            "xaxis": day_axis(_report_days(report)),
            "yaxis": axis_titled("Drifted features (share)", range=[0, 1.02], tickformat=".0%"),
            "yaxis2": axis_titled(
                "Largest PSI of the day", overlaying="y", side="right", rangemode="tozero"
            ),
            "margin": {"l": 70, "r": 70, "t": 30, "b": 60},
        },
    )
    return Chart(
        "chart-drift-days",
        "Drift per day",
        report.day_method[0].upper() + report.day_method[1:] + ".",
        figure,
    )


def _bin_labels(top: FeatureDistributions) -> list[str]:
    """Return a label per fine bin: its value for a single-value bin, else its range."""
    edges = [float("-inf"), *top.edges, float("inf")]
    labels = []
    for (low, high), single in zip(itertools.pairwise(edges), top.point_mass, strict=True):
        if single:
            labels.append(f"{low:.3g}")
        elif low == float("-inf"):
            labels.append(f"< {high:.3g}")
        elif high == float("inf"):
            labels.append(f"≥ {low:.3g}")
        else:
            labels.append(f"[{low:.3g}, {high:.3g})")
    return labels


def _feature_chart(top: FeatureDistributions) -> Chart:
    """Return one drifted feature's reference and current shares per bin either side fills."""
    labels = _bin_labels(top)
    filled = [
        i
        for i, (r, c) in enumerate(zip(top.reference_share, top.current_share, strict=True))
        if r > 0 or c > 0
    ]
    figure = figure_build(
        [
            go.Bar(
                x=[labels[i] for i in filled],
                y=finite_all([shares[i] for i in filled]),
                marker={"color": color},
                opacity=0.65,
                name=name,
            )
            for name, color, shares in (
                ("reference", HUMAN, top.reference_share),
                ("current", BAD, top.current_share),
            )
        ],
        {
            "height": 300,
            "barmode": "overlay",
            "bargap": 0.05,
            "xaxis": axis_titled(
                "Feature value (reference percentiles; a single number is a bin of its own)",
                type="category",
                nticks=12,
            ),
            "yaxis": axis_titled("Share of rows", tickformat=".0%", rangemode="tozero"),
        },
    )
    return Chart(
        f"chart-feature-{top.index}",
        f"Feature f{top.index}: reference and current distributions",
        "Bins are the reference data's percentiles, with a bin below its minimum, one above "
        "its maximum and one per frequent value; bins empty on both sides are left out.",
        figure,
    )


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def _prediction_chart(prediction: PredictionDrift) -> Chart:
    """Return the share of each predicted label, reference beside current."""
    figure = figure_build(
        [
            go.Bar(
                x=prediction.labels,
                y=_shares(counts),
                name=name,
                marker={"color": color},
            )
            for name, color, counts in (
                ("reference predictions", HUMAN, prediction.reference_counts),
                ("current predictions", MODEL, prediction.current_counts),
            )
        ],
        {
            "barmode": "group",
            "xaxis": axis_titled("Predicted label", type="category"),
            "yaxis": axis_titled("Share of predictions", tickformat=".0%"),
        },
    )
    return Chart("chart-prediction-drift", "Prediction drift", prediction.sentence, figure)
