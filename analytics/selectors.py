"""Reads for the analytics reports: rollups of closed days plus the open day, then a report.

Pages and the JSON API both call one ``report_<kind>``, through ``analytics.registry``, with
a queue, a model version and an inclusive range of UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import Count, F, Q, QuerySet

from analytics.adjudication import adjudication_outcome_counts
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
    AdjudicationOutcomes,
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
from deployments.models import ModelVersion, Prediction
from inspections.models import Item, Judgment, Queue


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


@dataclass(frozen=True)
class DisagreementFilters:
    """Which disagreements to list; None means any."""

    human_label: str | None = None
    model_label: str | None = None
    confidence_min: float | None = None
    confidence_max: float | None = None
    inspector: str | None = None


@dataclass(frozen=True)
class DisagreementRow:
    """One judgment the model's label differs from."""

    item_id: int
    external_id: str
    received_at: datetime
    human_label: str
    model_label: str
    confidence: float | None
    inspector: str


@dataclass(frozen=True)
class ClassPairCount:
    """How many disagreements have this human label and this model label."""

    human_label: str
    model_label: str
    count: int


@dataclass(frozen=True)
class DisagreementPage:
    """One page of disagreements, the filtered total and the counts per class pair."""

    rule_text: str
    total: int
    page: int
    page_size: int
    pages: int
    rows: list[DisagreementRow]
    class_pairs: list[ClassPairCount]
    # Over the whole scope (queue, model version, days), whatever the filters.
    adjudication: AdjudicationOutcomes


def _class_pairs_from_counts(
    *, scope: ReportScope, filters: DisagreementFilters
) -> list[ClassPairCount]:
    """Return disagreement counts per (human, model) label pair from the period's counts."""
    table = scope_counts_gather(scope=scope, with_features=False).total.confusion_each
    labels = _labels(scope)
    pairs = [
        ClassPairCount(labels[h], labels[m], int(table[h, m]))
        for h in range(len(labels))
        for m in range(len(labels))
        if h != m
        and table[h, m] > 0
        and filters.human_label in (None, labels[h])
        and filters.model_label in (None, labels[m])
    ]
    return sorted(pairs, key=lambda p: (-p.count, p.human_label, p.model_label))


def _disagreeing_judgments(
    scope: ReportScope, filters: DisagreementFilters, start: datetime, end: datetime
) -> QuerySet[Judgment]:
    """Return the scope's judgments whose label differs from the model's, filtered."""
    # One row per judgment: an item judged twice by two dissenting inspectors lists twice.
    judgments = Judgment.objects.filter(
        item__queue=scope.queue,
        item__received_at__gte=start,
        item__received_at__lt=end,
        item__predictions__model_version=scope.model_version,
        item__predictions__status=Prediction.Status.OK,
    ).exclude(label=F("item__predictions__label"))
    condition = Q()
    if filters.human_label is not None:
        condition &= Q(label=filters.human_label)
    if filters.model_label is not None:
        condition &= Q(item__predictions__label=filters.model_label)
    if filters.confidence_min is not None:
        condition &= Q(item__predictions__confidence__gte=filters.confidence_min)
    if filters.confidence_max is not None:
        condition &= Q(item__predictions__confidence__lte=filters.confidence_max)
    if filters.inspector is not None:
        condition &= Q(inspector__username=filters.inspector)
    return judgments.filter(condition)


def _class_pairs(
    scope: ReportScope, filters: DisagreementFilters, judgments: QuerySet[Judgment]
) -> list[ClassPairCount]:
    """Return the disagreement counts per class pair, from rollups when the filters allow."""
    if filters.confidence_min is None and filters.confidence_max is None and not filters.inspector:
        # Unfiltered by confidence or inspector, the class-pair totals are the off-diagonal
        # cells of the rolled-up "each judgment" table: no scan of the period's judgments.
        return _class_pairs_from_counts(scope=scope, filters=filters)
    return [
        ClassPairCount(row["label"], row["item__predictions__label"], row["n"])
        for row in judgments.values("label", "item__predictions__label")
        .order_by()
        .annotate(n=Count("id"))
        .order_by("-n", "label", "item__predictions__label")
    ]


def _disagreement_rows(
    judgments: QuerySet[Judgment], page: int, size: int
) -> list[DisagreementRow]:
    """Return one page of disagreeing judgments, newest items first."""
    return [
        DisagreementRow(
            item_id=row["item_id"],
            external_id=row["item__external_id"],
            received_at=row["item__received_at"],
            human_label=row["label"],
            model_label=row["item__predictions__label"],
            confidence=row["item__predictions__confidence"],
            inspector=row["inspector__username"],
        )
        for row in judgments.order_by("-item__received_at", "-item_id", "id").values(
            "item_id",
            "item__external_id",
            "item__received_at",
            "label",
            "item__predictions__label",
            "item__predictions__confidence",
            "inspector__username",
        )[(page - 1) * size : page * size]
    ]


def report_disagreements(
    *,
    scope: ReportScope,
    filters: DisagreementFilters | None = None,
    page: int = 1,
    page_size: int | None = None,
) -> DisagreementPage:
    """Return a page of judgments the model disagreed with, newest items first."""
    filters = filters or DisagreementFilters()
    size = page_size or analytics_settings().disagreements_page_size
    start, _ = day_bounds(scope.since)
    _, end = day_bounds(scope.until)
    judgments = _disagreeing_judgments(scope, filters, start, end)
    pairs = _class_pairs(scope, filters, judgments)
    total = sum(pair.count for pair in pairs)
    rows = _disagreement_rows(judgments, page, size)
    return DisagreementPage(
        rule_text="each judgment whose label differs from the model's (an item judged twice "
        "may appear twice)",
        total=total,
        page=page,
        page_size=size,
        pages=max(1, -(-total // size)),
        rows=rows,
        class_pairs=pairs,
        adjudication=adjudication_outcome_counts(
            queue=scope.queue,
            model_version=scope.model_version,
            start=start,
            end=end,
            disagreeing_judgments=sum(
                pair.count
                for pair in _class_pairs_from_counts(scope=scope, filters=DisagreementFilters())
            ),
        ),
    )
