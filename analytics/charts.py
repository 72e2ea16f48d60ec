"""Plotly figures of the analytics reports (no Django import).

Each builder takes a report dataclass and returns ``Chart`` values whose ``figure`` is a
plain JSON-ready figure dict (``{"data": [...], "layout": {...}}``) for ``json_script``
and the vendored plotly.js. Figures go through ``plotly.graph_objects.Figure`` so an
invalid property fails here, in Python, and not silently in the browser.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go

from analytics.summary_agreement import AgreementReport, BaselineReport
from analytics.summary_confidence import ConfidenceReport, OperationsReport
from analytics.summary_drift import DriftReport

if TYPE_CHECKING:  # the selectors module imports Django models; the charts need none
    from analytics.selectors import DisagreementPage

Figure = dict[str, Any]

HUMAN = "#5b6675"
MODEL = "#2557a7"
SECOND = "#e07b24"
GOOD, WARN, BAD = "#1e7b34", "#a86400", "#b3261e"
HEIGHT = 360


@dataclass(frozen=True)
class Chart:
    """One chart of a report page: an element id, a heading, a caption and the figure."""

    element_id: str
    title: str
    caption: str
    figure: Figure


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _finite_all(values: Sequence[float | None]) -> list[float | None]:
    return [_finite(v) for v in values]


def _errors(rates: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> dict:
    """Return an asymmetric error_y of intervals [low, high] around rates."""
    plus = [
        _finite(h - r) if _finite(r) is not None else None
        for r, h in zip(rates, highs, strict=True)
    ]
    minus = [
        _finite(r - lo) if _finite(r) is not None else None
        for r, lo in zip(rates, lows, strict=True)
    ]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus}


def _figure(data: list[Any], layout: dict[str, Any]) -> Figure:
    """Validate a figure with plotly and return it as a JSON-ready dict without a template."""
    base = {
        "height": HEIGHT,
        "margin": {"l": 70, "r": 30, "t": 30, "b": 60},
        "font": {"family": "system-ui, sans-serif", "size": 13, "color": "#1d2430"},
        "plot_bgcolor": "#ffffff",
        "paper_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
    }
    figure = go.Figure(data=data, layout={**base, **layout})
    result: Figure = json.loads(figure.to_json())
    result["layout"].pop("template", None)
    for axis in ("xaxis", "yaxis", "yaxis2"):
        if axis in result["layout"]:
            result["layout"][axis] = {
                "gridcolor": "#e6e9ee",
                "zerolinecolor": "#c5ccd6",
                "automargin": True,
                **result["layout"][axis],
            }
    return result


def _axis(title: str, **more: Any) -> dict[str, Any]:
    return {"title": {"text": title}, **more}


def _day_axis(days: Sequence[date]) -> dict[str, Any]:
    """Return a date axis ticked per day, padded half a day, so one day does not zoom to ms."""
    axis = _axis("Day the item was received (UTC)", type="date", tickformat="%b %d")
    if days:
        start = datetime.combine(min(days), time()) - timedelta(hours=12)
        end = datetime.combine(max(days), time()) + timedelta(hours=12)
        axis["range"] = [start.isoformat(), end.isoformat()]
        if (end - start).days <= 14:
            axis["dtick"] = 86_400_000
    return axis


def agreement_charts(report: AgreementReport) -> list[Chart]:
    """Return the confusion heatmap, agreement per day, per-class and per-inspector charts."""
    labels = report.labels
    counts = report.confusion
    text = [[f"{counts[h][m]}" for m in range(len(labels))] for h in range(len(labels))]
    heatmap = _figure(
        [
            go.Heatmap(
                z=[_finite_all(row) for row in report.confusion_normalised],
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
            "xaxis": _axis("Model label", type="category", side="bottom"),
            "yaxis": _axis("Human label (reference)", type="category", autorange="reversed"),
        },
    )
    days = [d for d in report.days if d.n > 0]
    per_day = _figure(
        [
            go.Scatter(
                x=[d.day.isoformat() for d in days],
                y=[d.rate for d in days],
                error_y=_errors(
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
            "xaxis": _day_axis([d.day for d in days]),
            "yaxis": _axis("Agreement with inspectors (share)", range=[0, 1.02], tickformat=".0%"),
        },
    )
    classes = _figure(
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
            "xaxis": _axis("Label", type="category"),
            "yaxis": _axis("Score (0 to 1)", range=[0, 1.02]),
        },
    )
    inspectors = _figure(
        [
            go.Bar(
                x=[r.inspector for r in report.inspectors],
                y=_finite_all([r.rate for r in report.inspectors]),
                error_y=_errors(
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
            "xaxis": _axis("Inspector", type="category"),
            "yaxis": _axis("Model agreement with inspector (share)", range=[0, 1.02]),
        },
    )
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


def baseline_charts(report: BaselineReport) -> list[Chart]:
    """Return human-human beside model-human agreement and kappa, with intervals."""
    pairs = (
        ("Human vs human", HUMAN, report.human_agreement, report.human_kappa),
        ("Model vs human", MODEL, report.model_agreement, report.model_kappa),
    )
    data = [
        go.Bar(
            x=["Agreement rate", "Cohen's kappa"],
            y=_finite_all([agreement.rate, kappa.value]),
            error_y=_errors(
                [agreement.rate, kappa.value],
                [agreement.low, kappa.low],
                [agreement.high, kappa.high],
            ),
            name=name,
            marker={"color": color},
        )
        for name, color, agreement, kappa in pairs
    ]
    figure = _figure(
        data,
        {
            "barmode": "group",
            "xaxis": _axis("Figure (same double-inspected items)", type="category"),
            "yaxis": _axis("Value (agreement share or kappa)", range=[0, 1.05]),
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
    pairs = page.class_pairs[:20]
    figure = _figure(
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
            "xaxis": _axis("Human label → model label (20 most frequent)", type="category"),
            "yaxis": _axis("Disagreeing judgments (count)"),
        },
    )
    return [Chart("chart-pairs", "Disagreements per class pair", page.rule_text, figure)]


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
    thresholds = report.thresholds
    colors = {"major": BAD, "moderate": WARN}
    psi = _figure(
        [
            go.Bar(
                x=[f"f{f.index}" for f in report.features],
                y=_finite_all([f.psi for f in report.features]),
                marker={"color": [colors.get(f.level, MODEL) for f in report.features]},
                customdata=[[f.ks_statistic, f.ks_p_adjusted, f.level] for f in report.features],
                hovertemplate="%{x}: PSI %{y:.3f}<br>KS D %{customdata[0]:.3f}, adjusted p "
                "%{customdata[1]:.2g}<br>%{customdata[2]}<extra></extra>",
                name="PSI",
            )
        ],
        {
            "height": 400,
            "xaxis": _axis("Feature", type="category", tickangle=-90, tickfont={"size": 10}),
            "yaxis": _axis("Population stability index (PSI)"),
            "shapes": [
                _line(thresholds.psi_moderate, WARN, f"moderate {thresholds.psi_moderate:g}"),
                _line(thresholds.psi_major, BAD, f"major {thresholds.psi_major:g}"),
            ],
        },
    )
    per_day = _figure(
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
                y=_finite_all([d.max_psi for d in report.days]),
                mode="lines+markers",
                name="largest PSI",
                yaxis="y2",
                line={"color": MODEL, "dash": "dot"},
            ),
        ],
        {
            "xaxis": _day_axis([d.day for d in report.days]),
            "yaxis": _axis("Drifted features (share)", range=[0, 1.02], tickformat=".0%"),
            "yaxis2": _axis("Largest PSI of the day", overlaying="y", side="right"),
            "margin": {"l": 70, "r": 70, "t": 30, "b": 60},
        },
    )
    charts = [
        Chart(
            "chart-psi",
            "PSI per feature",
            f"{report.binning}. Colour: drift level (PSI or KS after {report.correction}).",
            psi,
        ),
        Chart("chart-drift-days", "Drift per day", report.ks_method, per_day),
    ]
    for top in report.top:
        bins = [f"≤ {edge:.3g}" for edge in top.edges]
        bins.append(f"> {top.edges[-1]:.3g}" if top.edges else "all values")
        figure = _figure(
            [
                go.Bar(
                    x=bins,
                    y=_finite_all(shares),
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
                "xaxis": _axis(
                    "Feature value (bins at the reference data's percentiles)",
                    type="category",
                    nticks=12,
                ),
                "yaxis": _axis("Share of rows", tickformat=".0%", rangemode="tozero"),
            },
        )
        charts.append(
            Chart(
                f"chart-feature-{top.index}",
                f"Feature f{top.index}: reference and current distributions",
                "Bins are the reference data's percentiles (equal shares where the feature "
                "is continuous); bins sharing an edge are merged.",
                figure,
            )
        )
    if report.prediction is not None:
        prediction = report.prediction

        def shares(counts: list[int]) -> list[float]:
            total = sum(counts)
            return [c / total if total else 0.0 for c in counts]

        figure = _figure(
            [
                go.Bar(
                    x=prediction.labels,
                    y=shares(counts),
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
                "xaxis": _axis("Predicted label", type="category"),
                "yaxis": _axis("Share of predictions", tickformat=".0%"),
            },
        )
        charts.append(
            Chart(
                "chart-prediction-drift",
                "Prediction drift",
                f"PSI {prediction.psi:.3f}; chi-square {prediction.chi_square:.1f} on "
                f"{prediction.dof} degrees of freedom, p = {prediction.p_value:.2g}.",
                figure,
            )
        )
    return charts


def _centres(edges: Sequence[float]) -> list[float]:
    return [(a + b) / 2 for a, b in itertools.pairwise(edges)]


def confidence_charts(report: ConfidenceReport) -> list[Chart]:
    """Return confidence histograms by agreement, the reliability diagram, the coverage curve."""
    centres = _centres(report.histogram_edges)
    width = report.histogram_edges[1] - report.histogram_edges[0]
    histogram = _figure(
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
            "xaxis": _axis("Model confidence (top-class probability)", range=[0, 1]),
            "yaxis": _axis("Items (count)"),
        },
    )
    reliability = _figure(
        [
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                name="perfect calibration",
                line={"color": HUMAN, "dash": "dash"},
            ),
            go.Scatter(
                x=_finite_all(report.reliability_mean_confidence),
                y=_finite_all(report.reliability_accuracy),
                customdata=report.reliability_count,
                mode="lines+markers",
                name="model",
                line={"color": MODEL},
                hovertemplate="confidence %{x:.2f}: agreement %{y:.1%} "
                "(%{customdata} items)<extra></extra>",
            ),
        ],
        {
            "xaxis": _axis("Mean confidence in bin", range=[0, 1]),
            "yaxis": _axis("Agreement with humans (share)", range=[0, 1.02]),
        },
    )
    coverage = _figure(
        [
            go.Scatter(
                x=report.coverage_thresholds,
                y=_finite_all(report.coverage_share),
                mode="lines",
                name="items the model would decide alone",
                line={"color": HUMAN},
            ),
            go.Scatter(
                x=report.coverage_thresholds,
                y=_finite_all(report.coverage_high),
                mode="lines",
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
            ),
            go.Scatter(
                x=report.coverage_thresholds,
                y=_finite_all(report.coverage_low),
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(37, 87, 167, 0.18)",
                name="95% Wilson interval",
                hoverinfo="skip",
            ),
            go.Scatter(
                x=report.coverage_thresholds,
                y=_finite_all(report.coverage_agreement),
                mode="lines",
                name="agreement on those items",
                line={"color": MODEL},
            ),
        ],
        {
            "xaxis": _axis("Confidence threshold", range=[0, 1]),
            "yaxis": _axis("Share", range=[0, 1.02], tickformat=".0%"),
        },
    )
    ece = _finite(report.expected_calibration_error)
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
            f"Expected calibration error {ece:.3f} ({report.ece_method})."
            if ece is not None
            else "No items to calibrate on.",
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


def operations_charts(report: OperationsReport) -> list[Chart]:
    """Return latency percentiles per backend, error reasons, scoring lag, FP32/INT8 flips."""
    backends = list(report.latency_ms)
    latency = _figure(
        [
            go.Bar(
                x=backends,
                y=_finite_all([getattr(report.latency_ms[b], name) for b in backends]),
                name=name,
                marker={"color": color},
            )
            for name, color in (("p50", GOOD), ("p95", WARN), ("p99", BAD))
        ],
        {
            "barmode": "group",
            "xaxis": _axis("Inference backend", type="category"),
            "yaxis": _axis("Latency per item (ms)", rangemode="tozero"),
        },
    )
    reasons = _figure(
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
            "xaxis": _axis("Failed predictions (count)", rangemode="tozero"),
            "yaxis": _axis("Reason", type="category", autorange="reversed"),
            "annotations": []
            if report.reasons
            else [
                {
                    "text": "No prediction failed in this range",
                    "xref": "paper",
                    "yref": "paper",
                    "x": 0.5,
                    "y": 0.5,
                    "showarrow": False,
                    "font": {"size": 15, "color": HUMAN},
                }
            ],
        },
    )
    lag = report.lag_seconds
    shown = [i for i, c in enumerate(lag.counts) if c > 0]
    low, high = (shown[0], shown[-1] + 1) if shown else (0, len(lag.counts))
    lag_figure = _figure(
        [
            go.Bar(
                x=_centres(lag.edges[low : high + 1]),
                y=lag.counts[low:high],
                marker={"color": MODEL},
                name="predictions",
            )
        ],
        {
            "xaxis": _axis("Scoring lag, received to prediction stored (s, log scale)", type="log"),
            "yaxis": _axis("Predictions (count)"),
            "bargap": 0.05,
        },
    )
    charts = [
        Chart(
            "chart-latency", "Latency percentiles per backend", report.percentile_method, latency
        ),
        Chart(
            "chart-errors",
            "Error reasons",
            f"{report.errors} of {report.predictions} predictions failed.",
            reasons,
        ),
        Chart(
            "chart-lag",
            "Scoring lag",
            f"p50 {lag.p50:.2f} s, p95 {lag.p95:.2f} s, p99 {lag.p99:.2f} s.",
            lag_figure,
        ),
    ]
    for number, variant in enumerate(report.variants):
        figure = _figure(
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
                "xaxis": _axis("Label", type="category"),
                "yaxis": _axis("Items whose label flipped (count)", rangemode="tozero"),
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


def report_charts(kind: str, report: Any) -> list[Chart]:
    """Return the charts of a report of this kind."""
    builders: dict[str, Callable[[Any], list[Chart]]] = {
        "agreement": agreement_charts,
        "baseline": baseline_charts,
        "disagreements": disagreement_charts,
        "drift": drift_charts,
        "confidence": confidence_charts,
        "operations": operations_charts,
    }
    if kind not in builders:
        raise ValueError(f"no charts for a {kind!r} report")
    return builders[kind](report)
