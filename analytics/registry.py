"""Every report kind in one place: its slug, title, builder, charts, filters and options.

A new report kind is one entry here plus its ``summaries/`` and ``charts/`` modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from analytics.charts.agreement import agreement_charts, baseline_charts, disagreement_charts
from analytics.charts.base import Chart
from analytics.charts.confidence import confidence_charts, operations_charts
from analytics.charts.drift import drift_charts
from analytics.disagreements import report_disagreements
from analytics.params import agreement_options_parse, disagreements_options_parse, no_options
from analytics.selectors import (
    ReportScope,
    report_agreement,
    report_baseline,
    report_confidence,
    report_drift,
    report_operations,
)


@dataclass(frozen=True)
class ReportKind:
    """One kind of report: how it is named, built, drawn and parameterised."""

    slug: str
    title: str
    build: Callable[[ReportScope, Mapping[str, Any]], object]
    charts: Callable[[Any], list[Chart]]
    # The kind's own query parameters, kept in links, pages and the JSON URL.
    filters: tuple[str, ...] = ()
    options_parse: Callable[[Mapping[str, Any]], dict[str, Any]] = no_options


_KINDS = (
    ReportKind(
        slug="agreement",
        title="Agreement with inspectors",
        build=lambda scope, options: report_agreement(
            scope=scope, rule=options.get("rule", "each")
        ),
        charts=agreement_charts,
        filters=("rule",),
        options_parse=agreement_options_parse,
    ),
    ReportKind(
        slug="baseline",
        title="Human baseline",
        build=lambda scope, options: report_baseline(scope=scope),
        charts=baseline_charts,
    ),
    ReportKind(
        slug="disagreements",
        title="Disagreements",
        build=lambda scope, options: report_disagreements(
            scope=scope,
            filters=options.get("filters"),
            page=options.get("page", 1),
            page_size=options.get("page_size"),
        ),
        charts=disagreement_charts,
        filters=("human_label", "model_label", "confidence_min", "confidence_max", "inspector"),
        options_parse=disagreements_options_parse,
    ),
    ReportKind(
        slug="drift",
        title="Drift",
        build=lambda scope, options: report_drift(scope=scope),
        charts=drift_charts,
    ),
    ReportKind(
        slug="confidence",
        title="Confidence and calibration",
        build=lambda scope, options: report_confidence(scope=scope),
        charts=confidence_charts,
    ),
    ReportKind(
        slug="operations",
        title="Operations",
        build=lambda scope, options: report_operations(scope=scope),
        charts=operations_charts,
    ),
)

# Keyed by slug, in the order pages list them: iterating gives the slugs.
REPORT_KINDS: Mapping[str, ReportKind] = {kind.slug: kind for kind in _KINDS}


def report_kind_get(*, slug: str) -> ReportKind:
    """Return the report kind of this slug; raise ValueError for an unknown one."""
    if slug not in REPORT_KINDS:
        raise ValueError(f"unknown report kind {slug!r}; expected one of {', '.join(REPORT_KINDS)}")
    return REPORT_KINDS[slug]


def report_build(*, kind: str, scope: ReportScope, options: Mapping[str, Any]) -> object:
    """Return the report of this kind; options are the kind's own parameters."""
    return report_kind_get(slug=kind).build(scope, options)


def report_kind_titles() -> list[tuple[str, str]]:
    """Return (slug, title) of every kind, in page order."""
    return [(kind.slug, kind.title) for kind in REPORT_KINDS.values()]
