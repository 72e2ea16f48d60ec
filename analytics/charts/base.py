"""What every chart shares: the Chart value, colours, axes and plotly validation."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import plotly.graph_objects as go

Figure = dict[str, Any]

HUMAN = "#5b6675"
MODEL = "#2557a7"
SECOND = "#e07b24"
GOOD, WARN, BAD = "#1e7b34", "#a86400", "#b3261e"
HEIGHT = 360


@dataclass(frozen=True)
class Chart:
    """One chart of a report page: an element id, a heading, a caption and the figure.

    A chart with nothing to draw has ``empty``, the sentence the page shows instead.
    """

    element_id: str
    title: str
    caption: str
    figure: Figure
    empty: str = ""


def chart_empty(element_id: str, title: str, sentence: str) -> Chart:
    """Return a chart that has nothing to draw: the page shows the sentence in its place."""
    return Chart(element_id=element_id, title=title, caption="", figure={}, empty=sentence)


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def finite_all(values: Sequence[float | None]) -> list[float | None]:
    return [finite(v) for v in values]


def interval_errors(rates: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> dict:
    """Return an asymmetric error_y of intervals [low, high] around rates."""
    plus = [
        finite(h - r) if finite(r) is not None else None for r, h in zip(rates, highs, strict=True)
    ]
    minus = [
        finite(r - lo) if finite(r) is not None else None for r, lo in zip(rates, lows, strict=True)
    ]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus}


def figure_build(data: list[Any], layout: dict[str, Any]) -> Figure:
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


def axis_titled(title: str, **more: Any) -> dict[str, Any]:
    return {"title": {"text": title}, **more}


def day_axis(days: Sequence[date]) -> dict[str, Any]:
    """Return a date axis over the given days (the report's range), ticked per day when
    short and padded half a day, so one day does not zoom to milliseconds."""
    axis = axis_titled("Day the item was received (UTC)", type="date", tickformat="%b %d")
    if days:
        start = datetime.combine(min(days), time()) - timedelta(hours=12)
        end = datetime.combine(max(days), time()) + timedelta(hours=12)
        axis["range"] = [start.isoformat(), end.isoformat()]
        if (end - start).days <= 14:
            axis["dtick"] = 86_400_000
    return axis
