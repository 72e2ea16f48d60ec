"""Celery entry points: take ids, call one service."""

from __future__ import annotations

import logging
from typing import Any

from billiard.exceptions import WorkerLostError
from celery import shared_task
from celery.signals import task_failure
from django.conf import settings
from django.db import InterfaceError, OperationalError

from deployments import canary_advance, mlflow_tags, monitor, notifications, scoring, sweeper
from deployments.model_files import ModelFileUnavailable

log = logging.getLogger("shadowlab.scoring")

_DATABASE_RETRIES = 4


@shared_task(
    acks_late=True,
    # A batch whose worker process died (killed, out of memory, a model that crashes ONNX
    # Runtime) is sent again a second later (CELERY_TASK_RETRY_ON_WORKER_LOST), at most
    # SCORING_CRASH_ATTEMPTS runs in all; then its items get an error prediction
    # (_score_items_given_up).
    max_retries=settings.SHADOWLAB["SCORING_CRASH_ATTEMPTS"] - 1,
    default_retry_delay=1,
    # A database hiccup, or model storage (a bucket) that does not answer for now: tried again
    # with backoff; past the retries the items stay unscored until the sweeper queues them.
    autoretry_for=(OperationalError, InterfaceError, ModelFileUnavailable),
    retry_kwargs={"max_retries": _DATABASE_RETRIES},
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
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


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=_DATABASE_RETRIES,
    soft_time_limit=60,
    time_limit=90,
)
def score_items_give_up(
    model_version_id: int, item_ids: list[int], reason: str, attempts: int
) -> None:
    """Record an error prediction for the items of a batch no worker process survived."""
    scoring.predictions_give_up(
        model_version_id=model_version_id, item_ids=item_ids, reason=reason, attempts=attempts
    )


@task_failure.connect
def _score_items_given_up(
    sender: Any = None,
    exception: BaseException | None = None,
    args: Any = (),
    **_: Any,
) -> None:
    """Once a batch's worker process died on its last attempt, have its items marked failed.

    Runs in the worker's main process, which sends a message and touches no database.
    """
    if getattr(sender, "name", None) != score_items.name:
        return
    if not isinstance(exception, WorkerLostError):
        return
    # Intake and the sweeper send the version and the items as the first two arguments.
    model_version_id, item_ids = args[0], args[1]
    attempts = int(getattr(sender.request, "retries", 0) or 0) + 1
    reason = (
        f"worker process died on each of {attempts} attempts to score this batch "
        f"(a crash in the model's runtime or out of memory): {exception}"
    )
    try:
        score_items_give_up.delay(model_version_id, item_ids, reason, attempts)
    except Exception as exc:  # the sweeper queues the items again later
        log.warning("could not record the lost batch of %d items: %s", len(item_ids), exc)


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
