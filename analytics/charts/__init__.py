"""Plotly figures of the analytics reports (no Django import).

Each builder takes a report dataclass and returns ``Chart`` values whose ``figure`` is a
plain JSON-ready figure dict (``{"data": [...], "layout": {...}}``) for ``json_script``
and the vendored plotly.js. Figures go through ``plotly.graph_objects.Figure`` so an
invalid property fails here, in Python, and not silently in the browser.
"""

from __future__ import annotations

from typing import Any

from analytics.charts.agreement import agreement_charts, baseline_charts, disagreement_charts
from analytics.charts.base import Chart
from analytics.charts.confidence import confidence_charts, operations_charts
from analytics.charts.drift import drift_charts

__all__ = [
    "Chart",
    "agreement_charts",
    "baseline_charts",
    "confidence_charts",
    "disagreement_charts",
    "drift_charts",
    "operations_charts",
    "report_charts",
]


def report_charts(kind: str, report: Any) -> list[Chart]:
    """Return the charts of a report of this kind."""
    # Imported here: the registry imports this package's modules.
    from analytics.registry import REPORT_KINDS

    if kind not in REPORT_KINDS:
        raise ValueError(f"no charts for a {kind!r} report")
    return REPORT_KINDS[kind].charts(report)
