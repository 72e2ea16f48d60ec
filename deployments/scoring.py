"""Shadow scoring: score a batch of items with one model version and store the results.

Each step has its own module: ``scoring_message`` (what a message carries),
``stored_features`` (features read back for re-queued items), ``scoring_cache`` (model
versions and runners loaded once per process), ``inference``, ``prediction_insert`` and
``scoring_metrics``. What is lost on the way (broker down, worker killed) is recovered by
``deployments.sweeper``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db.models import Exists, OuterRef, Subquery, TextField
from django.db.models.functions import Cast

from deployments import metrics
from deployments.inference import Outcome, outcomes_infer
from deployments.model_files import ModelFileUnavailable
from deployments.models import ModelVersion, Prediction, ScoringAttempt
from deployments.prediction_insert import predictions_insert
from deployments.scoring_cache import model_input_range, model_runner, model_version_cached
from deployments.scoring_message import message_batch
from deployments.scoring_metrics import batch_observe
from deployments.stored_features import stored_features_matrix
from inspections.models import Item

log = logging.getLogger("shadowlab.scoring")


@dataclass(frozen=True)
class ScoreSummary:
    scored: int
    errors: int
    skipped: int
    inference_ms: float
    total_ms: float


def predictions_score(
    *,
    model_version_id: int,
    item_ids: list[int],
    features: str | None = None,
    received: list[float] | None = None,
) -> ScoreSummary:
    """Score a batch of items with one model version and store one prediction per item.

    New items arrive with their features (and arrival times) in the message, so nothing is
    read back. Otherwise (the sweeper's re-queues) the items that still lack a prediction are
    read from the database. Either way rows are inserted with conflicts ignored, so a
    re-delivered or duplicated task changes nothing.
    """
    started = time.perf_counter()
    model_version = model_version_cached(model_version_id)
    if model_version is None:
        return ScoreSummary(0, 0, len(item_ids), 0.0, 0.0)
    carried = (
        message_batch(item_ids, features, received or [], model_version.input_width)
        if features is not None
        else None
    )
    if carried is not None:
        ids, matrix, arrival = carried
        outcomes, inference_seconds = _score(model_version, ids, matrix)
        stored = predictions_insert(model_version=model_version, outcomes=outcomes, attempts={})
        return _summarise(
            model_version, item_ids, outcomes, arrival, stored, inference_seconds, started
        )
    rows = list(
        Item.objects.filter(pk__in=item_ids)
        .exclude(
            Exists(Prediction.objects.filter(item=OuterRef("pk"), model_version=model_version))
        )
        .annotate(
            attempts=Subquery(
                ScoringAttempt.objects.filter(
                    item=OuterRef("pk"), model_version=model_version
                ).values("attempts")[:1]
            )
        )
        .order_by("id")
        .values_list("id", Cast("features", output_field=TextField()), "received_at", "attempts")
    )
    arrival = {item_id: received_at for item_id, _, received_at, _ in rows}
    attempts = {item_id: n for item_id, _, _, n in rows if n}
    ids, matrix, problems = stored_features_matrix(
        [(item_id, text) for item_id, text, _, _ in rows], model_version.input_width
    )
    outcomes = [Outcome(item_id, reason=reason) for item_id, reason in problems]
    scored, inference_seconds = _score(model_version, ids, matrix)
    outcomes.extend(scored)
    stored = predictions_insert(model_version=model_version, outcomes=outcomes, attempts=attempts)
    return _summarise(
        model_version, item_ids, outcomes, arrival, stored, inference_seconds, started
    )


def predictions_give_up(
    *, model_version_id: int, item_ids: list[int], reason: str, attempts: int
) -> int:
    """Store an error prediction with the reason for each item still lacking one; return how many.

    For a batch that killed the worker process on every attempt: running it again would only
    kill the next one. Items scored meanwhile keep their prediction.
    """
    model_version = model_version_cached(model_version_id)
    if model_version is None:
        return 0
    stored = predictions_insert(
        model_version=model_version,
        outcomes=[Outcome(item_id, reason=reason) for item_id in item_ids],
        attempts=dict.fromkeys(item_ids, attempts),
    )
    metrics.PREDICTIONS.labels(model_version.key, Prediction.Status.ERROR).inc(stored)
    metrics.SCORING_ERRORS.labels(model_version.key, metrics.error_kind(reason)).inc(stored)
    log.warning(
        "gave up model=%s items=%d stored=%d: %s", model_version.key, len(item_ids), stored, reason
    )
    return stored


def _score(
    model_version: ModelVersion, ids: list[int], matrix: np.ndarray
) -> tuple[list[Outcome], float]:
    if not ids:
        return [], 0.0
    # Inputs far outside the reference data are never given to the model (INT8 would answer
    # where FP32 fails): they get an error prediction saying which feature.
    problems = model_input_range(model_version).problems(matrix)
    refused = [Outcome(ids[row], reason=p) for row, p in enumerate(problems) if p]
    if refused:
        kept = [row for row, problem in enumerate(problems) if problem is None]
        ids, matrix = [ids[row] for row in kept], matrix[kept]
        if not ids:
            return refused, 0.0
    try:
        runner = model_runner(model_version)
    except ModelFileUnavailable:
        raise  # model storage away for now: the task tries again, no item gets an error
    except Exception as exc:
        reason = f"model could not be loaded: {type(exc).__name__}: {exc}"
        return [*refused, *(Outcome(item_id, reason=reason) for item_id in ids)], 0.0
    scored, seconds = outcomes_infer(runner, model_version.labels, ids, matrix)
    return [*refused, *scored], seconds


def _summarise(
    model_version: ModelVersion,
    item_ids: list[int],
    outcomes: list[Outcome],
    received: dict[int, datetime],
    stored: int,
    inference_seconds: float,
    started: float,
) -> ScoreSummary:
    errors = sum(1 for outcome in outcomes if outcome.reason)
    batch_observe(model_version, outcomes, received, len(item_ids), inference_seconds)
    summary = ScoreSummary(
        scored=len(outcomes) - errors,
        errors=errors,
        skipped=len(item_ids) - stored,
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
