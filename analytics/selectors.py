"""Reads for the analytics reports: rollups of closed days plus the open day, then a report.

Pages and the JSON API both call one ``report_<kind>``, through ``analytics.registry``, with
a queue, a model version and an inclusive range of UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, timedelta

from django.contrib.auth.models import User

from analytics.aggregation import Period, period_counts_compute
from analytics.config import analytics_settings
from analytics.days import day_bounds, utc_today
from analytics.models import DailyRollup, ReferenceProfile
from analytics.services import profile_bins
from analytics.stats.binning import ReferenceBins
from analytics.stats.counts import (
    PeriodCounts,
    period_counts_from_json,
    period_counts_sum,
    rollup_is_current,
)
from analytics.stats.drift import DriftThresholds
from analytics.summaries.agreement import (
    AgreementReport,
    BaselineReport,
    Rule,
    agreement_summary,
    baseline_summary,
)
from analytics.summaries.confidence import (
    ConfidenceReport,
    OperationsReport,
    confidence_summary,
    operations_summary,
)
from analytics.summaries.drift import DriftReport, drift_summary
from deployments.models import ModelVersion
from inspections.models import Item, Queue


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: a queue, one of its model versions, inclusive UTC days."""

    queue: Queue
    model_version: ModelVersion
    since: date
    until: date


@dataclass(frozen=True)
class ScopeCounts:
    """Per-day counts of a scope and their sum, with the reference bins if any."""

    days: list[tuple[date, PeriodCounts]]
    total: PeriodCounts
    bins: list[ReferenceBins] | None
    reference_counts: list[list[int]] | None
    reference_predictions: list[int] | None


def report_scope_default_range(*, until: date | None = None) -> tuple[date, date]:
    """Return the default range: DEFAULT_DAYS days ending today."""
    end = until or utc_today()
    return end - timedelta(days=analytics_settings().default_days - 1), end


def reference_profile_get(*, model_version: ModelVersion) -> ReferenceProfile | None:
    """Return the model version's stored reference profile; the worker builds it, never a read."""
    return ReferenceProfile.objects.filter(model_version=model_version).first()


def _next_busy_day(queue: Queue, day: date, last: date) -> date:
    """Return the first day from `day` to `last` an item arrived on, else the day after last."""
    start, _ = day_bounds(day)
    _, end = day_bounds(last)
    first = (
        Item.objects.filter(queue=queue, received_at__gte=start, received_at__lt=end)
        .order_by("received_at")
        .values_list("received_at", flat=True)
        .first()
    )
    return first.astimezone(UTC).date() if first else last + timedelta(days=1)


def scope_counts_gather(*, scope: ReportScope, with_features: bool = True) -> ScopeCounts:
    """Return the scope's counts: stored rollups, and days without one aggregated now."""
    version = scope.model_version
    profile = reference_profile_get(model_version=version) if with_features else None
    bins = profile_bins(profile) if profile else None
    k = len(scope.queue.labels)
    last = min(scope.until, utc_today())
    stored = {
        rollup.day: period_counts_from_json(rollup.counts)
        for rollup in DailyRollup.objects.filter(
            queue=scope.queue, model_version=version, day__gte=scope.since, day__lte=last
        )
        if rollup_is_current(rollup.counts)
    }
    days = []
    next_busy: date | None = None  # the first day on or after `day` with an item, once known
    for offset in range((last - scope.since).days + 1):
        day = scope.since + timedelta(days=offset)
        counts = stored.get(day)
        if counts is None:
            # The open day, or a closed day the periodic task has not reached yet. Days
            # without items need no aggregation: one indexed look-up finds the next busy day.
            if next_busy is None or next_busy < day:
                next_busy = _next_busy_day(scope.queue, day, last)
            if day < next_busy:
                counts = PeriodCounts(n_classes=k)
            else:
                start, end = day_bounds(day)
                counts = period_counts_compute(
                    period=Period(queue=scope.queue, model_version=version, start=start, end=end),
                    bins=bins,
                    with_features=with_features,
                )
        elif not with_features:
            counts = counts.with_features(None)
        days.append((day, counts))
    return ScopeCounts(
        days=days,
        total=period_counts_sum([counts for _, counts in days], k),
        bins=bins,
        reference_counts=profile.feature_counts if profile else None,
        reference_predictions=profile.prediction_counts if profile else None,
    )


def _labels(scope: ReportScope) -> list[str]:
    return [str(label) for label in scope.queue.labels]


def report_agreement(
    *, scope: ReportScope, rule: Rule = "each", gathered: ScopeCounts | None = None
) -> AgreementReport:
    """Return model-versus-human agreement over the scope (from its counts, if gathered)."""
    gathered = gathered or scope_counts_gather(scope=scope, with_features=False)
    names = dict(
        User.objects.filter(pk__in=gathered.total.inspectors).values_list("pk", "username")
    )
    return agreement_summary(
        total=gathered.total,
        days=gathered.days,
        labels=_labels(scope),
        inspector_names=names,
        rule=rule,
    )


def report_baseline(*, scope: ReportScope) -> BaselineReport:
    """Return the human baseline beside the model on the same double-inspected items."""
    return baseline_summary(total=scope_counts_gather(scope=scope, with_features=False).total)


def drift_thresholds() -> DriftThresholds:
    """Return the drift thresholds the ANALYTICS setting configures."""
    config = analytics_settings()
    return DriftThresholds(
        psi_moderate=config.psi_moderate,
        psi_major=config.psi_major,
        ks_alpha=config.ks_alpha,
        ks_min_statistic=config.ks_min_statistic,
        correction=config.correction,
    )


def report_drift(*, scope: ReportScope, gathered: ScopeCounts | None = None) -> DriftReport:
    """Return input and prediction drift of the scope against the model's reference data.

    Counts passed in must have been gathered with features.
    """
    gathered = gathered or scope_counts_gather(scope=scope)
    return drift_summary(
        reference_counts=gathered.reference_counts or [],
        reference_predictions=gathered.reference_predictions or [0],
        bins=gathered.bins or [],
        total=gathered.total,
        days=gathered.days,
        labels=_labels(scope),
        thresholds=drift_thresholds(),
        top_n=analytics_settings().top_drifted_features,
    )


def report_confidence(
    *, scope: ReportScope, gathered: ScopeCounts | None = None
) -> ConfidenceReport:
    """Return the confidence histograms, calibration and coverage curve over the scope."""
    gathered = gathered or scope_counts_gather(scope=scope, with_features=False)
    return confidence_summary(total=gathered.total)


def report_operations(
    *, scope: ReportScope, gathered: ScopeCounts | None = None
) -> OperationsReport:
    """Return latency, errors, scoring lag and FP32/INT8 flips over the scope."""
    gathered = gathered or scope_counts_gather(scope=scope, with_features=False)
    return operations_summary(total=gathered.total, labels=_labels(scope))
