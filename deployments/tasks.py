"""Celery entry points: take ids, call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from deployments import canary_advance, mlflow_tags, monitor, notifications, scoring, sweeper


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=4,
    soft_time_limit=60,
    time_limit=90,
)
def score_items(
    model_version_id: int,
    item_ids: list[int],
    features: str | None = None,
    received: list[float] | None = None,
) -> None:
    """Score a batch of items with one model version (database hiccups are retried).

    New items come with their features (packed float32, see scoring_message.features_pack) and
    arrival times; re-queued ones with ids only.
    """
    scoring.predictions_score(
        model_version_id=model_version_id, item_ids=item_ids, features=features, received=received
    )


@shared_task(soft_time_limit=120, time_limit=180)
def sweep_unscored() -> None:
    """Queue again the items that shadow models have not scored in time."""
    sweeper.unscored_sweep()


@shared_task(soft_time_limit=120, time_limit=180)
def rollout_monitor() -> None:
    """Look at every canary and live version and roll back any that breaches its thresholds."""
    monitor.rollout_monitor_run()


# Beat sends one a minute; a run that overlaps the next changes nothing twice: each move
# re-reads the canary under the queue's lock.
@shared_task(soft_time_limit=240, time_limit=300)
def canaries_advance() -> None:
    """Advance the canaries whose policy allows it and whose audit sample passes."""
    canary_advance.canary_advance_run()


# Tags carry the state at the time of the write, so a retry or a duplicate writes the
# latest state again: nothing to de-duplicate.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(mlflow_tags.MlflowUnreachable, OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=6,
    soft_time_limit=60,
    time_limit=90,
)
def mlflow_tags_write(model_version_id: int) -> None:
    """Write a version's gate verdict and rollout state to its MLflow model version as tags."""
    mlflow_tags.mlflow_tags_write(model_version_id=model_version_id)


@shared_task(
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    max_retries=3,
    soft_time_limit=60,
    time_limit=90,
)
def promotion_request_notify(request_id: int) -> None:
    """Mail the admins that a promotion request waits for their decision."""
    notifications.promotion_request_notify(request_id=request_id)


# One row per open episode (a unique constraint) keeps an overlapping run from mailing twice.
@shared_task(soft_time_limit=120, time_limit=180)
def model_errors_watch() -> None:
    """Mail the admins once for each deployed version whose predictions are mostly errors."""
    notifications.model_errors_watch()
