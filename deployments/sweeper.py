"""The sweeper: queue again what shadow scoring lost, and give up after a few attempts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from deployments import metrics
from deployments.enqueue import score_items_send
from deployments.models import Deployment, ModelVersion, Prediction, ScoringAttempt
from deployments.selectors import deployments_scoring
from inspections.models import Item

log = logging.getLogger("shadowlab.scoring")


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


@dataclass(frozen=True)
class SweepSummary:
    requeued: int
    gave_up: int


def unscored_sweep(*, now: datetime | None = None) -> SweepSummary:
    """Queue again the items a deployed version has not scored within the grace period.

    Every version that scores new items (shadow, canary, live, standby) is swept, from when
    it began to score them.

    Items that were already queued the maximum number of times get an error prediction
    saying so, so that nothing is retried forever.
    """
    cfg = settings.SHADOWLAB
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=cfg["SWEEP_GRACE_SECONDS"])
    requeued = gave_up = 0
    for deployment, since in deployments_scoring():
        missing = _unscored_items(
            deployment=deployment, since=since, cutoff=cutoff, limit=cfg["SWEEP_LIMIT"]
        )
        if not missing:
            continue
        summary = _missing_requeue(
            version=deployment.model_version,
            missing=missing,
            now=now,
            max_attempts=cfg["SCORING_MAX_ATTEMPTS"],
        )
        requeued += summary.requeued
        gave_up += summary.gave_up
    if requeued or gave_up:
        log.info("sweep requeued=%d gave_up=%d", requeued, gave_up)
    return SweepSummary(requeued=requeued, gave_up=gave_up)


def _unscored_items(
    *, deployment: Deployment, since: datetime, cutoff: datetime, limit: int
) -> list[int]:
    """Return the ids of the deployment's items with no prediction and no recent re-queue."""
    version = deployment.model_version
    return list(
        Item.objects.filter(
            queue_id=deployment.queue_id,
            received_at__gte=since,
            received_at__lt=cutoff,
        )
        .exclude(Exists(Prediction.objects.filter(item=OuterRef("pk"), model_version=version)))
        .exclude(
            Exists(
                ScoringAttempt.objects.filter(
                    item=OuterRef("pk"), model_version=version, last_queued_at__gte=cutoff
                )
            )
        )
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


def _missing_requeue(
    *, version: ModelVersion, missing: list[int], now: datetime, max_attempts: int
) -> SweepSummary:
    """Queue the missing items again, or record an error for those out of attempts."""
    known = dict(
        ScoringAttempt.objects.filter(model_version=version, item_id__in=missing).values_list(
            "item_id", "attempts"
        )
    )
    exhausted = [item_id for item_id in missing if known.get(item_id, 1) >= max_attempts]
    retry = [item_id for item_id in missing if known.get(item_id, 1) < max_attempts]
    _attempts_exhausted(version=version, exhausted=exhausted, known=known)
    # Count an attempt only once its message is on the broker: a broker outage must not
    # use up an item's attempts.
    if retry and not _send(version.pk, retry):
        retry = []
    ScoringAttempt.objects.bulk_create(
        [
            ScoringAttempt(
                item_id=item_id,
                model_version=version,
                attempts=known.get(item_id, 1) + 1,
                last_queued_at=now,
            )
            for item_id in retry
        ],
        update_conflicts=True,
        unique_fields=["item", "model_version"],
        update_fields=["attempts", "last_queued_at"],
        batch_size=1000,
    )
    return SweepSummary(requeued=len(retry), gave_up=len(exhausted))


def _attempts_exhausted(
    *, version: ModelVersion, exhausted: list[int], known: dict[int, int]
) -> None:
    """Store an error prediction for each item queued the maximum number of times."""
    Prediction.objects.bulk_create(
        [
            Prediction(
                item_id=item_id,
                model_version=version,
                status=Prediction.Status.ERROR,
                backend=version.variant,
                reason=(
                    f"no result after {known.get(item_id, 1)} attempts "
                    "(worker lost, broker unavailable or scoring kept failing)"
                ),
                attempts=known.get(item_id, 1),
            )
            for item_id in exhausted
        ],
        ignore_conflicts=True,
    )
    if exhausted:
        metrics.PREDICTIONS.labels(version.key, Prediction.Status.ERROR).inc(len(exhausted))
        metrics.SCORING_ERRORS.labels(version.key, "gave_up").inc(len(exhausted))


def _send(model_version_id: int, item_ids: list[int]) -> bool:
    size = settings.SHADOWLAB["SCORING_BATCH_SIZE"]
    return all(
        score_items_send(model_version_id=model_version_id, item_ids=chunk)
        for chunk in _chunks(item_ids, size)
    )
