"""Charts of the drift report."""

from __future__ import annotations

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
    day_axis,
    figure_build,
    finite_all,
)
from analytics.summaries.drift import DriftReport, FeatureDistributions, PredictionDrift


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
    """Return per-feature PSI, drift per day, the top features' distributions, label drift."""
    if not report.available:
        return []
    charts = [
        Chart(
            "chart-psi",
            "PSI per feature",
            f"{report.binning}. Colour: drift level (PSI or KS after {report.correction}).",
            _psi_figure(report),
        ),
        Chart("chart-drift-days", "Drift per day", report.ks_method, _days_figure(report)),
    ]
    charts.extend(_feature_chart(top) for top in report.top)
    if report.prediction is not None:
        charts.append(_prediction_chart(report.prediction))
    return charts


def _psi_figure(report: DriftReport) -> Figure:
    """Return the PSI bar per feature, coloured by drift level, with the threshold lines."""
    thresholds = report.thresholds
    colors = {"major": BAD, "moderate": WARN}
    return figure_build(
        [
            go.Bar(
                x=[f"f{f.index}" for f in report.features],
                y=finite_all([f.psi for f in report.features]),
                marker={"color": [colors.get(f.level, MODEL) for f in report.features]},
                customdata=[[f.ks_statistic, f.ks_p_adjusted, f.level] for f in report.features],
                hovertemplate="%{x}: PSI %{y:.3f}<br>KS D %{customdata[0]:.3f}, adjusted p "
                "%{customdata[1]:.2g}<br>%{customdata[2]}<extra></extra>",
                name="PSI",
            )
        ],
        {
            "height": 400,
            "xaxis": axis_titled("Feature", type="category", tickangle=-90, tickfont={"size": 10}),
            "yaxis": axis_titled("Population stability index (PSI)"),
            "shapes": [
                _line(thresholds.psi_moderate, WARN, f"moderate {thresholds.psi_moderate:g}"),
                _line(thresholds.psi_major, BAD, f"major {thresholds.psi_major:g}"),
            ],
        },
    )


def _days_figure(report: DriftReport) -> Figure:
    """Return the drifted-feature share and the largest PSI of each day."""
    return figure_build(
        [
            go.Scatter(
                x=[d.day.isoformat() for d in report.days],
                y=[d.drifted_share for d in report.days],
                mode="lines+markers",
                name="drifted-feature share",
                line={"color": BAD},
            ),
            go.Scatter(
                x=[d.day.isoformat() for d in report.days],
                y=finite_all([d.max_psi for d in report.days]),
                mode="lines+markers",
                name="largest PSI",
                yaxis="y2",
                line={"color": MODEL, "dash": "dot"},
            ),
        ],
        {
            "xaxis": day_axis([d.day for d in report.days]),
            "yaxis": axis_titled("Drifted features (share)", range=[0, 1.02], tickformat=".0%"),
            "yaxis2": axis_titled(
                "Largest PSI of the day", overlaying="y", side="right", rangemode="tozero"
            ),
            "margin": {"l": 70, "r": 70, "t": 30, "b": 60},
        },
    )


def _feature_chart(top: FeatureDistributions) -> Chart:
    """Return one drifted feature's reference and current shares per reference bin."""
    bins = [f"≤ {edge:.3g}" for edge in top.edges]
    bins.append(f"> {top.edges[-1]:.3g}" if top.edges else "all values")
    figure = figure_build(
        [
            go.Bar(
                x=bins,
                y=finite_all(shares),
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
                "Feature value (bins at the reference data's percentiles)",
                type="category",
                nticks=12,
            ),
            "yaxis": axis_titled("Share of rows", tickformat=".0%", rangemode="tozero"),
        },
    )
    return Chart(
        f"chart-feature-{top.index}",
        f"Feature f{top.index}: reference and current distributions",
        "Bins are the reference data's percentiles (equal shares where the feature "
        "is continuous); bins sharing an edge are merged.",
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
    return Chart(
        "chart-prediction-drift",
        "Prediction drift",
        f"PSI {prediction.psi:.3f}; chi-square {prediction.chi_square:.1f} on "
        f"{prediction.dof} degrees of freedom, p = {prediction.p_value:.2g}.",
        figure,
    )
