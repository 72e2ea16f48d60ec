"""Writes of the analytics app: reference profiles and daily rollups."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.db import transaction
from django.db.models import Min

from analytics.aggregation import Period, period_counts_compute
from analytics.config import analytics_settings
from analytics.days import day_bounds, utc_today
from analytics.models import DailyRollup, ReferenceProfile
from analytics.samples import audit_items_q
from analytics.stats.binning import (
    ReferenceBins,
    feature_histograms,
    reference_bins_with_range_by_feature,
)
from analytics.stats.counts import ROLLUP_FORMAT, period_counts_to_json
from deployments.models import Decision, ModelVersion, Prediction
from deployments.registry import reference_data
from inspections.models import Item

logger = logging.getLogger(__name__)


def _edges(interior: list[float]) -> np.ndarray:
    return np.concatenate(([-np.inf], np.asarray(interior, np.float64), [np.inf]))


def profile_bins(profile: ReferenceProfile) -> list[ReferenceBins]:
    """Return the fine and coarse reference bins a profile stores, per feature.

    A format-1 profile knows no feature's range: its bins say so with an unbounded
    minimum and maximum, and drift reads its out-of-range shares as unknown.
    """
    if profile.format < 2:
        return [
            ReferenceBins(fine_edges=_edges(fine), coarse_edges=_edges(coarse))
            for fine, coarse in zip(profile.fine_edges, profile.coarse_edges, strict=True)
        ]
    return [
        ReferenceBins(
            fine_edges=_edges(fine),
            coarse_edges=_edges(coarse),
            categorical=bool(categorical),
            minimum=float(low),
            maximum=float(high),
        )
        for fine, coarse, categorical, low, high in zip(
            profile.fine_edges,
            profile.coarse_edges,
            profile.feature_categorical or [],
            profile.feature_minimum or [],
            profile.feature_maximum or [],
            strict=True,
        )
    ]


def reference_profile_build(*, model_version: ModelVersion) -> ReferenceProfile | None:
    """Compute and store a model version's reference bins, ranges, counts and predicted labels."""
    reference = reference_data(model_version)
    if reference is None:
        return None
    matrix = np.asarray(reference, dtype=np.float64)
    bins = reference_bins_with_range_by_feature(matrix)
    counts = feature_histograms(matrix, bins)
    # Imported here: onnxruntime belongs on the worker path, not in every web process.
    from deployments.scoring import model_runner

    predicted = model_runner(model_version).predict(reference).label_indices
    queue_labels = [str(label) for label in model_version.queue.labels]
    to_queue = np.array([queue_labels.index(str(label)) for label in model_version.labels])
    prediction_counts = np.bincount(to_queue[predicted], minlength=len(queue_labels))
    profile, _ = ReferenceProfile.objects.update_or_create(
        model_version=model_version,
        defaults={
            "rows": int(matrix.shape[0]),
            "fine_edges": [b.fine_edges[1:-1].tolist() for b in bins],
            "coarse_edges": [b.coarse_edges[1:-1].tolist() for b in bins],
            "feature_counts": [c.tolist() for c in counts],
            "prediction_counts": prediction_counts.tolist(),
            "format": ReferenceProfile.CURRENT_FORMAT,
            "feature_minimum": [b.minimum for b in bins],
            "feature_maximum": [b.maximum for b in bins],
            "feature_categorical": [b.categorical for b in bins],
        },
    )
    return profile


def reference_profile_ensure(*, model_version: ModelVersion) -> ReferenceProfile | None:
    """Return the stored reference profile, building it if missing or old (worker path only).

    Registration queues the build; this is the fallback when that message was lost, and
    how a profile of an older format gets the current bins (before the first rollup that
    counts on them).
    """
    existing = ReferenceProfile.objects.filter(model_version=model_version).first()
    if existing is not None and existing.format >= ReferenceProfile.CURRENT_FORMAT:
        return existing
    return reference_profile_build(model_version=model_version) or existing


def _has_audit_items(*, model_version: ModelVersion, start: datetime, end: datetime) -> bool:
    """Return whether the version has audit items received in [start, end)."""
    # A version that never decided an item (every shadow version) is answered by an index.
    if not Decision.objects.filter(model_version=model_version).exists():
        return False
    return Item.objects.filter(
        audit_items_q(model_version=model_version),
        queue_id=model_version.queue_id,
        received_at__gte=start,
        received_at__lt=end,
    ).exists()


def rollup_compute(*, model_version: ModelVersion, day: date) -> DailyRollup:
    """Compute one closed day's counts and replace that day's rollups with them.

    Returns the every-item rollup. The version's audit-sample rollup of the day is computed
    in the same transaction when the day has audit items, and removed when it has none:
    a day rolled up in the current format without an audit rollup has no audit items.
    """
    if day >= utc_today():
        raise ValueError(f"{day} is not closed yet; the open day is aggregated at request time")
    profile = reference_profile_ensure(model_version=model_version)
    bins = profile_bins(profile) if profile else None
    start, end = day_bounds(day)
    queue = model_version.queue
    counts = period_counts_compute(
        period=Period(queue=queue, model_version=model_version, start=start, end=end), bins=bins
    )
    audit = None
    if _has_audit_items(model_version=model_version, start=start, end=end):
        audit = period_counts_compute(
            period=Period(
                queue=queue, model_version=model_version, start=start, end=end, sample="audit"
            ),
            bins=bins,
        )
    with transaction.atomic():
        rollup, _ = DailyRollup.objects.update_or_create(
            queue=queue,
            model_version=model_version,
            day=day,
            sample=DailyRollup.Sample.ALL,
            defaults={"items": counts.items, "counts": period_counts_to_json(counts)},
        )
        if audit is None:
            DailyRollup.objects.filter(
                model_version=model_version, day=day, sample=DailyRollup.Sample.AUDIT
            ).delete()
        else:
            DailyRollup.objects.update_or_create(
                queue=queue,
                model_version=model_version,
                day=day,
                sample=DailyRollup.Sample.AUDIT,
                defaults={"items": audit.items, "counts": period_counts_to_json(audit)},
            )
    return rollup


def rollups_refresh(*, today: date | None = None) -> int:
    """Roll up every closed day that lacks a rollup or may still change; return how many days.

    Judgments and predictions arrive after their item, so the last ROLLUP_LOOKBACK_DAYS
    closed days are recomputed on every run; older days only when missing or stored in
    an older format.
    """
    today = today or utc_today()
    lookback = analytics_settings().rollup_lookback_days
    backfill = analytics_settings().rollup_backfill_days
    computed = 0
    for version in ModelVersion.objects.select_related("queue", "parent"):
        first = Prediction.objects.filter(model_version=version).aggregate(
            first=Min("item__received_at")
        )["first"]
        if first is None:
            continue
        day = max(first.astimezone(UTC).date(), today - timedelta(days=backfill))
        done = set(
            DailyRollup.objects.filter(
                model_version=version,
                day__gte=day,
                sample=DailyRollup.Sample.ALL,
                counts__format=ROLLUP_FORMAT,
            ).values_list("day", flat=True)
        )
        while day < today:
            if day not in done or day >= today - timedelta(days=lookback):
                started = time.perf_counter()
                rollup = rollup_compute(model_version=version, day=day)
                computed += 1
                logger.info(
                    "rollup %s %s items=%d seconds=%.2f",
                    version.key,
                    day,
                    rollup.items,
                    time.perf_counter() - started,
                )
            day += timedelta(days=1)
    return computed
