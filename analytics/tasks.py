"""Celery entry points of the analytics app: call one service."""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from analytics import services
from deployments.models import ModelVersion


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=3,
    soft_time_limit=600,
    time_limit=660,
)
def rollups_refresh() -> None:
    """Bring the daily rollups up to date (recomputing a day replaces its rollup)."""
    services.rollups_refresh()


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=3,
    soft_time_limit=300,
    time_limit=360,
)
def reference_profile_build(model_version_id: int) -> None:
    """Build a newly registered model version's reference profile, unless it exists."""
    model_version = ModelVersion.objects.select_related("queue").filter(pk=model_version_id).first()
    if model_version is not None:
        services.reference_profile_ensure(model_version=model_version)
