"""Charts of the agreement, baseline and disagreements reports."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from analytics.charts.base import (
    BAD,
    HUMAN,
    MODEL,
    SECOND,
    Chart,
    Figure,
    axis_titled,
    chart_empty,
    day_axis,
    figure_build,
    finite_all,
    interval_errors,
)
from analytics.summaries.agreement import AgreementReport, BaselineReport

if TYPE_CHECKING:  # the selectors module imports Django models; the charts need none
    from analytics.disagreements import DisagreementPage


def agreement_charts(report: AgreementReport) -> list[Chart]:
    """Return the confusion heatmap, agreement per day, per-class and per-inspector charts."""
    if report.agreement.n == 0:
        return [
            chart_empty(
                "chart-confusion", "Confusion matrix (row-normalised)", report.empty_reason
            ),
            chart_empty("chart-agreement-days", "Agreement per day", report.empty_reason),
            chart_empty("chart-classes", "Per-class precision, recall and F1", report.empty_reason),
            chart_empty("chart-inspectors", "Agreement per inspector", report.empty_reason),
        ]
    heatmap = _heatmap_figure(report)
    per_day = _per_day_figure(report)
    classes = _classes_figure(report)
    inspectors = _inspectors_figure(report)
    return [
        Chart(
            "chart-confusion",
            "Confusion matrix (row-normalised)",
            "Colour: share of each human label's judgments given each model label; "
            "numbers: judgment counts.",
            heatmap,
        ),
        Chart(
            "chart-agreement-days",
            "Agreement per day",
            f"Bars: {report.interval_method}.",
            per_day,
        ),
        Chart(
            "chart-classes",
            "Per-class precision, recall and F1",
            "The human decision is the reference.",
            classes,
        ),
        Chart(
            "chart-inspectors",
            "Agreement per inspector",
            f"Bars: {report.interval_method}.",
            inspectors,
        ),
    ]


def _heatmap_figure(report: AgreementReport) -> Figure:
    """Return the row-normalised confusion heatmap, cells labelled with judgment counts."""
    labels = report.labels
    counts = report.confusion
    text = [[f"{counts[h][m]}" for m in range(len(labels))] for h in range(len(labels))]
    return figure_build(
        [
            go.Heatmap(
                z=[finite_all(row) for row in report.confusion_normalised],
                x=labels,
                y=labels,
                text=text,
                texttemplate="%{text}",
                zmin=0,
                zmax=1,
                colorscale="Blues",
                colorbar={"title": {"text": "share of row"}},
                hovertemplate="human %{y}, model %{x}<br>%{z:.1%} of the row (%{text} "
                "judgments)<extra></extra>",
            )
        ],
        {
            "height": 460,
            "xaxis": axis_titled("Model label", type="category", side="bottom"),
            "yaxis": axis_titled("Human label (reference)", type="category", autorange="reversed"),
        },
    )


def _per_day_figure(report: AgreementReport) -> Figure:
    """Return agreement per day with its intervals."""
    days = [d for d in report.days if d.n > 0]
    return figure_build(
        [
            go.Scatter(
                x=[d.day.isoformat() for d in days],
                y=[d.rate for d in days],
                error_y=interval_errors(
                    [d.rate for d in days], [d.low for d in days], [d.high for d in days]
                ),
                customdata=[d.n for d in days],
                mode="lines+markers",
                name="agreement",
                line={"color": MODEL},
                hovertemplate="%{x}: %{y:.1%} of %{customdata} judgments<extra></extra>",
            )
        ],
        {
            # The axis spans the report's range, days without judged items included.
            "xaxis": day_axis([d.day for d in report.days]),
            "yaxis": axis_titled(
                "Agreement with inspectors (share)", range=[0, 1.02], tickformat=".0%"
            ),
        },
    )


def _classes_figure(report: AgreementReport) -> Figure:
    """Return precision, recall and F1 per label."""
    return figure_build(
        [
            go.Bar(
                x=[c.label for c in report.classes],
                y=[getattr(c, name) for c in report.classes],
                name=name.capitalize() if name != "f1" else "F1",
                marker={"color": color},
            )
            for name, color in (("precision", MODEL), ("recall", SECOND), ("f1", HUMAN))
        ],
        {
            "barmode": "group",
            "xaxis": axis_titled("Label", type="category"),
            "yaxis": axis_titled("Score (0 to 1)", range=[0, 1.02]),
        },
    )


def _inspectors_figure(report: AgreementReport) -> Figure:
    """Return the model's agreement with each inspector."""
    return figure_build(
        [
            go.Bar(
                x=[r.inspector for r in report.inspectors],
                y=finite_all([r.rate for r in report.inspectors]),
                error_y=interval_errors(
                    [r.rate for r in report.inspectors],
                    [r.low for r in report.inspectors],
                    [r.high for r in report.inspectors],
                ),
                customdata=[r.n for r in report.inspectors],
                marker={"color": MODEL},
                name="agreement",
                hovertemplate="%{x}: %{y:.1%} of %{customdata} judgments<extra></extra>",
            )
        ],
        {
            "xaxis": axis_titled("Inspector", type="category"),
            "yaxis": axis_titled("Model agreement with inspector (share)", range=[0, 1.02]),
        },
    )


def baseline_charts(report: BaselineReport) -> list[Chart]:
    """Return human-human beside model-human agreement and kappa, with intervals."""
    if report.items == 0:
        return [
            chart_empty("chart-baseline", "Human baseline beside the model", report.empty_reason)
        ]
    pairs = (
        ("Human vs human", HUMAN, report.human_agreement, report.human_kappa),
        ("Model vs human", MODEL, report.model_agreement, report.model_kappa),
    )
    data = [
        go.Bar(
            x=["Agreement rate", "Cohen's kappa"],
            y=finite_all([agreement.rate, kappa.value]),
            error_y=interval_errors(
                [agreement.rate, kappa.value],
                [agreement.low, kappa.low],
                [agreement.high, kappa.high],
            ),
            name=name,
            marker={"color": color},
        )
        for name, color, agreement, kappa in pairs
    ]
    lows = [
        v for v in finite_all([report.human_kappa.low, report.model_kappa.low]) if v is not None
    ]
    bottom = min([0.0, *lows]) - 0.05 if min([0.0, *lows]) < 0 else 0.0
    figure = figure_build(
        data,
        {
            "barmode": "group",
            "xaxis": axis_titled("Figure (same double-inspected items)", type="category"),
            # Kappa's interval may reach below 0 on few items: show all of it.
            "yaxis": axis_titled("Value (agreement share or kappa)", range=[bottom, 1.05]),
        },
    )
    return [
        Chart(
            "chart-baseline",
            "Human baseline beside the model",
            f"Bars: 95% intervals ({report.interval_method}; {report.kappa_method}).",
            figure,
        )
    ]


def disagreement_charts(page: DisagreementPage) -> list[Chart]:
    """Return the disagreement counts per (human, model) class pair, largest first."""
    if not page.class_pairs:
        return [
            chart_empty(
                "chart-pairs",
                "Disagreements per class pair",
                page.empty_reason or "No disagreement in this range.",
            )
        ]
    pairs = page.class_pairs[:20]
    figure = figure_build(
        [
            go.Bar(
                x=[f"{p.human_label} → {p.model_label}" for p in pairs],
                y=[p.count for p in pairs],
                marker={"color": BAD},
                name="disagreements",
                hovertemplate="human %{x}<br>%{y} judgments<extra></extra>",
            )
        ],
        {
            "xaxis": axis_titled("Human label → model label (20 most frequent)", type="category"),
            "yaxis": axis_titled("Disagreeing judgments (count)"),
        },
    )
    return [Chart("chart-pairs", "Disagreements per class pair", page.rule_text, figure)]
