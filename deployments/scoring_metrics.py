"""Record a scoring batch's outcomes, timings and lag in the worker's Prometheus metrics."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from deployments import metrics
from deployments.inference import Outcome
from deployments.models import ModelVersion, Prediction


def batch_observe(
    model_version: ModelVersion,
    outcomes: list[Outcome],
    received: dict[int, datetime],
    batch_items: int,
    inference_seconds: float,
) -> None:
    key = model_version.key
    metrics.BATCH_ITEMS.observe(batch_items)
    if not outcomes:
        return
    errors = [outcome for outcome in outcomes if outcome.reason]
    metrics.PREDICTIONS.labels(key, Prediction.Status.OK).inc(len(outcomes) - len(errors))
    metrics.PREDICTIONS.labels(key, Prediction.Status.ERROR).inc(len(errors))
    for outcome in errors:
        metrics.SCORING_ERRORS.labels(key, metrics.error_kind(outcome.reason)).inc()
    if inference_seconds:
        metrics.INFERENCE_SECONDS.labels(key, model_version.variant).observe(inference_seconds)
    now = timezone.now()
    lag = metrics.SCORING_LAG.labels(key)
    for outcome in outcomes:
        lag.observe((now - received[outcome.item_id]).total_seconds())
