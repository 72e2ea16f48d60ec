"""Reads for the analytics reports: rollups of closed days plus the open day, then a report.

Pages and the JSON API both call one ``report_<kind>``, through ``analytics.registry``, with
a queue, a model version and an inclusive range of UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, timedelta
from typing import TypeVar

from django.contrib.auth.models import User

from analytics.aggregation import Period, period_counts_compute
from analytics.config import analytics_settings
from analytics.days import day_bounds, max_range_days, utc_today
from analytics.models import DailyRollup, GatePolicy, ReferenceProfile
from analytics.samples import SAMPLE_DEFAULT, Sample, audit_empty_reason
from analytics.services import profile_bins
from analytics.stats.binning import ReferenceBins
from analytics.stats.counts import (
    ROLLUP_FORMAT,
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
from analytics.summaries.deferral import DEFERRAL_TARGETS, deferral_summary
from analytics.summaries.drift import DriftReport, drift_summary
from analytics.summaries.headlines import HEADLINE_RULE
from deployments.models import Decision, ModelVersion
from inspections.models import Item, Queue


class ReportOptionInvalid(ValueError):
    """A report option names what its scope does not have (a label, an inspector): a 400."""


@dataclass(frozen=True)
class ReportScope:
    """What a report covers: a queue, one of its model versions, inclusive UTC days, a sample.

    Sample "audit" narrows every count to the version's audit sample (analytics.samples).
    """

    queue: Queue
    model_version: ModelVersion
    since: date
    until: date
    sample: Sample = SAMPLE_DEFAULT

    def audit_empty_reason(self, items: int) -> str:
        """Return the sentence for an empty audit sample, "" when it is not or not audit."""
        if self.sample != "audit" or items:
            return ""
        return audit_empty_reason(
            model_version=self.model_version, since=self.since, until=self.until
        )


@dataclass(frozen=True)
class ScopeCounts:
    """Per-day counts of a scope and their sum, with the reference bins if any."""

    days: list[tuple[date, PeriodCounts]]
    total: PeriodCounts
    bins: list[ReferenceBins] | None
    reference_counts: list[list[int]] | None
    reference_predictions: list[int] | None


def report_scope_default_range(*, until: date | None = None) -> tuple[date, date]:
    """Return the default range: DEFAULT_DAYS days (at most MAX_RANGE_DAYS) ending today."""
    end = until or utc_today()
    days = min(analytics_settings().default_days, max_range_days())
    return end - timedelta(days=days - 1), end


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


def _settled_days(scope: ReportScope, days: list[date]) -> set[date]:
    """Return which of these days have a current every-item rollup of the scope's version.

    Their audit rollup, if any, was computed with it: one missing means no audit items.
    """
    if not days:
        return set()
    return set(
        DailyRollup.objects.filter(
            queue=scope.queue,
            model_version=scope.model_version,
            sample=DailyRollup.Sample.ALL,
            day__in=days,
            counts__format=ROLLUP_FORMAT,
        ).values_list("day", flat=True)
    )


def scope_counts_gather(*, scope: ReportScope, with_features: bool = True) -> ScopeCounts:
    """Return the scope's counts: stored rollups, and days without one aggregated now.

    For the audit sample, a day without an audit rollup counts nothing when its every-item
    rollup is current (there were no audit items), and is aggregated now otherwise, as
    for every item: the audit sample never costs more than every item does.
    """
    version = scope.model_version
    profile = reference_profile_get(model_version=version) if with_features else None
    bins = profile_bins(profile) if profile else None
    k = len(scope.queue.labels)
    last = min(scope.until, utc_today())
    all_days = [scope.since + timedelta(days=n) for n in range((last - scope.since).days + 1)]
    audit = scope.sample == "audit"
    # A version that never decided an item has no audit sample: one indexed look-up.
    nothing = audit and not Decision.objects.filter(model_version=version).exists()
    stored = (
        {}
        if nothing
        else {
            rollup.day: period_counts_from_json(rollup.counts)
            for rollup in DailyRollup.objects.filter(
                queue=scope.queue,
                model_version=version,
                sample=scope.sample,
                day__gte=scope.since,
                day__lte=last,
            )
            if rollup_is_current(rollup.counts)
        }
    )
    settled = (
        _settled_days(scope, [day for day in all_days if day not in stored])
        if audit and not nothing
        else set()
    )
    days = []
    next_busy: date | None = None  # the first day on or after `day` with an item, once known
    for day in all_days:
        counts = stored.get(day)
        if counts is None and (nothing or day in settled):
            counts = PeriodCounts(n_classes=k)
        elif counts is None:
            # The open day, or a closed day the periodic task has not reached yet. Days
            # without items need no aggregation: one indexed look-up finds the next busy day.
            if next_busy is None or next_busy < day:
                next_busy = _next_busy_day(scope.queue, day, last)
            if day < next_busy:
                counts = PeriodCounts(n_classes=k)
            else:
                start, end = day_bounds(day)
                counts = period_counts_compute(
                    period=Period(
                        queue=scope.queue,
                        model_version=version,
                        start=start,
                        end=end,
                        sample=scope.sample,
                    ),
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


Report = TypeVar("Report", AgreementReport, BaselineReport, ConfidenceReport, OperationsReport)


def _audit_empty(report: Report, scope: ReportScope, total: PeriodCounts) -> Report:
    """Return the report saying its audit sample is empty, when it is (charts read it too)."""
    empty = scope.audit_empty_reason(total.items)
    return replace(report, empty_reason=empty) if empty else report


def report_agreement(
    *, scope: ReportScope, rule: Rule = "each", gathered: ScopeCounts | None = None
) -> AgreementReport:
    """Return model-versus-human agreement over the scope (from its counts, if gathered)."""
    gathered = gathered or scope_counts_gather(scope=scope, with_features=False)
    names = dict(
        User.objects.filter(pk__in=gathered.total.inspectors).values_list("pk", "username")
    )
    report = agreement_summary(
        total=gathered.total,
        days=gathered.days,
        labels=_labels(scope),
        inspector_names=names,
        rule=rule,
    )
    return _audit_empty(report, scope, gathered.total)


def report_baseline(*, scope: ReportScope) -> BaselineReport:
    """Return the human baseline beside the model on the same double-inspected items."""
    total = scope_counts_gather(scope=scope, with_features=False).total
    return _audit_empty(baseline_summary(total=total), scope, total)


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
    report = drift_summary(
        reference_counts=gathered.reference_counts or [],
        reference_predictions=gathered.reference_predictions or [0],
        bins=gathered.bins or [],
        total=gathered.total,
        days=gathered.days,
        labels=_labels(scope),
        thresholds=drift_thresholds(),
        top_n=analytics_settings().top_drifted_features,
    )
    empty = scope.audit_empty_reason(gathered.total.items)
    if empty and not report.available:
        # The page reads "Drift is not available: <reason>."
        return replace(report, reason=empty[0].lower() + empty[1:].rstrip("."))
    return report


def report_confidence(
    *, scope: ReportScope, gathered: ScopeCounts | None = None
) -> ConfidenceReport:
    """Return the confidence histograms, calibration and coverage curve over the scope."""
    gathered = gathered or scope_counts_gather(scope=scope, with_features=False)
    report = confidence_summary(total=gathered.total)
    assert gathered.total.coverage is not None
    deferral = deferral_summary(
        bins=gathered.total.coverage,
        threshold=scope.queue.deferral_threshold,
        targets=deferral_targets(queue=scope.queue),
        min_items=HEADLINE_RULE["agreement"].min_n,
        audit=scope.sample == "audit",
    )
    return _audit_empty(replace(report, deferral=deferral), scope, gathered.total)


def deferral_targets(*, queue: Queue) -> list[float]:
    """Return the agreement levels thresholds are suggested for: the gate's floor among them."""
    floor = (
        GatePolicy.objects.filter(queue=queue)
        .order_by("-version")
        .values_list("agreement_floor", flat=True)
        .first()
    )
    targets = set(DEFERRAL_TARGETS)
    if floor is not None and 0.0 < floor < 1.0:
        targets.add(round(float(floor), 4))
    return sorted(targets)


def report_operations(
    *, scope: ReportScope, gathered: ScopeCounts | None = None
) -> OperationsReport:
    """Return latency, errors, scoring lag and FP32/INT8 flips over the scope."""
    gathered = gathered or scope_counts_gather(scope=scope, with_features=False)
    report = operations_summary(total=gathered.total, labels=_labels(scope))
    return _audit_empty(report, scope, gathered.total)
