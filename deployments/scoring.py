"""Shadow scoring: queue items for the models in shadow, score them, recover what was lost."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils import timezone

from deployments.models import Deployment, ModelVersion, Prediction, ScoringAttempt
from deployments.runtime import ModelRunner, runner_get
from inspections.models import Item

log = logging.getLogger("shadowlab.scoring")


def _chunks(ids: list[int], size: int) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def shadow_enqueue(*, queue_id: int, item_ids: list[int]) -> int:
    """Queue items for every model version in shadow on their queue; return versions reached.

    Called after commit. If the broker is down the items stay unscored and the sweeper
    queues them once it is back, so a failure here is logged, not raised.
    """
    if not item_ids:
        return 0
    version_ids = Deployment.objects.filter(
        queue_id=queue_id, role=Deployment.Role.SHADOW
    ).values_list("model_version_id", flat=True)
    return sum(1 for version_id in version_ids if _send(version_id, sorted(item_ids)))


@dataclass(frozen=True)
class ScoreSummary:
    scored: int
    errors: int
    skipped: int
    inference_ms: float
    total_ms: float


def _runner(model_version: ModelVersion) -> ModelRunner:
    cfg = settings.SHADOWLAB
    return runner_get(
        Path(model_version.onnx_file.path),
        sha256=model_version.sha256,
        input_name=model_version.input_name,
        probability_output=model_version.probability_output,
        input_width=model_version.input_width,
        intra_op_threads=cfg["ORT_INTRA_OP_THREADS"],
        providers=cfg["ORT_PROVIDERS"],
    )


def _row_problem(features: object, width: int) -> str | None:
    if not isinstance(features, list):
        return "stored features are not a list"
    if len(features) != width:
        return f"item has {len(features)} features, the model expects {width}"
    for index, value in enumerate(features):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"features[{index}] is not a number"
        if not math.isfinite(value):
            return f"features[{index}] is not finite"
    return None


def predictions_score(*, model_version_id: int, item_ids: list[int]) -> ScoreSummary:
    """Score the items that lack a prediction from this model version, in one batch.

    Idempotent: items already predicted are skipped and rows are inserted with conflicts
    ignored, so a re-delivered or duplicated task changes nothing.
    """
    started = time.perf_counter()
    model_version = ModelVersion.objects.filter(pk=model_version_id).first()
    if model_version is None:
        return ScoreSummary(0, 0, len(item_ids), 0.0, 0.0)
    done = set(
        Prediction.objects.filter(model_version=model_version, item_id__in=item_ids).values_list(
            "item_id", flat=True
        )
    )
    pending = sorted(set(item_ids) - done)
    rows = list(Item.objects.filter(pk__in=pending).values_list("id", "features"))
    attempts = dict(
        ScoringAttempt.objects.filter(model_version=model_version, item_id__in=pending).values_list(
            "item_id", "attempts"
        )
    )
    backend = model_version.variant
    predictions: list[Prediction] = []

    def error(item_id: int, reason: str) -> Prediction:
        return Prediction(
            item_id=item_id,
            model_version=model_version,
            status=Prediction.Status.ERROR,
            backend=backend,
            reason=reason[:1000],
            attempts=attempts.get(item_id, 1),
        )

    valid_ids: list[int] = []
    valid_rows: list[list[float]] = []
    for item_id, features in rows:
        problem = _row_problem(features, model_version.input_width)
        if problem:
            predictions.append(error(item_id, problem))
        else:
            valid_ids.append(item_id)
            valid_rows.append(features)

    inference_seconds = 0.0
    if valid_ids:
        try:
            runner = _runner(model_version)
        except Exception as exc:
            reason = f"model could not be loaded: {type(exc).__name__}: {exc}"
            predictions.extend(error(item_id, reason) for item_id in valid_ids)
        else:
            matrix = np.asarray(valid_rows, dtype=np.float32)
            labels = model_version.labels
            try:
                results = [(valid_ids, runner.predict(matrix))]
            except Exception:
                # Isolate the rows that make the model fail; score the rest.
                results = []
                for item_id, row in zip(valid_ids, matrix, strict=True):
                    try:
                        results.append(([item_id], runner.predict(row[None, :])))
                    except Exception as exc:
                        reason = f"inference failed: {type(exc).__name__}: {exc}"
                        predictions.append(error(item_id, reason))
            for ids, batch in results:
                inference_seconds += batch.seconds
                per_item_ms = batch.seconds * 1000.0 / len(ids)
                confidences = batch.probabilities.max(axis=1)
                for offset, item_id in enumerate(ids):
                    probabilities = batch.probabilities[offset]
                    if not np.all(np.isfinite(probabilities)):
                        predictions.append(
                            error(item_id, "model returned non-finite probabilities")
                        )
                        continue
                    predictions.append(
                        Prediction(
                            item_id=item_id,
                            model_version=model_version,
                            status=Prediction.Status.OK,
                            label=labels[int(batch.label_indices[offset])],
                            probabilities=[round(float(p), 6) for p in probabilities],
                            confidence=round(float(confidences[offset]), 6),
                            latency_ms=per_item_ms,
                            backend=backend,
                            attempts=attempts.get(item_id, 1),
                        )
                    )
    Prediction.objects.bulk_create(predictions, ignore_conflicts=True, batch_size=1000)
    errors = sum(1 for p in predictions if p.status == Prediction.Status.ERROR)
    summary = ScoreSummary(
        scored=len(predictions) - errors,
        errors=errors,
        skipped=len(item_ids) - len(rows),
        inference_ms=inference_seconds * 1000.0,
        total_ms=(time.perf_counter() - started) * 1000.0,
    )
    log.info(
        "scored model=%s items=%d ok=%d errors=%d skipped=%d inference_ms=%.2f total_ms=%.2f",
        model_version.key,
        len(item_ids),
        summary.scored,
        summary.errors,
        summary.skipped,
        summary.inference_ms,
        summary.total_ms,
    )
    return summary


@dataclass(frozen=True)
class SweepSummary:
    requeued: int
    gave_up: int


def unscored_sweep(*, now: datetime | None = None) -> SweepSummary:
    """Queue again the items a shadow model has not scored within the grace period.

    Items that were already queued the maximum number of times get an error prediction
    saying so, so that nothing is retried forever.
    """
    cfg = settings.SHADOWLAB
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=cfg["SWEEP_GRACE_SECONDS"])
    max_attempts = cfg["SCORING_MAX_ATTEMPTS"]
    requeued = gave_up = 0
    shadows = Deployment.objects.filter(role=Deployment.Role.SHADOW).select_related("model_version")
    for deployment in shadows:
        version = deployment.model_version
        missing = list(
            Item.objects.filter(
                queue_id=deployment.queue_id,
                received_at__gte=deployment.started_at,
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
            .values_list("id", flat=True)[: cfg["SWEEP_LIMIT"]]
        )
        if not missing:
            continue
        known = dict(
            ScoringAttempt.objects.filter(model_version=version, item_id__in=missing).values_list(
                "item_id", "attempts"
            )
        )
        exhausted = [item_id for item_id in missing if known.get(item_id, 1) >= max_attempts]
        retry = [item_id for item_id in missing if known.get(item_id, 1) < max_attempts]
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
        requeued += len(retry)
        gave_up += len(exhausted)
    if requeued or gave_up:
        log.info("sweep requeued=%d gave_up=%d", requeued, gave_up)
    return SweepSummary(requeued=requeued, gave_up=gave_up)


def _send(model_version_id: int, item_ids: list[int]) -> bool:
    from deployments.tasks import score_items

    size = settings.SHADOWLAB["SCORING_BATCH_SIZE"]
    try:
        for chunk in _chunks(item_ids, size):
            score_items.delay(model_version_id, chunk)
    except Exception as exc:  # kombu raises several types for an unreachable broker
        log.warning("broker unavailable during sweep: %s: %s", type(exc).__name__, exc)
        return False
    return True
