"""Prometheus metrics of shadow scoring.

Counters and histograms are updated where the work happens (worker processes). With
PROMETHEUS_MULTIPROC_DIR set, every process on a host writes to that folder and one
endpoint reports them all: the web's /metrics on a single host (as `manage.py run_local`
sets it up), or each worker host's own port (SHADOWLAB_WORKER_METRICS_PORT).
Backlog figures come from the database, and the broker's queue lengths from the broker,
when the web's /metrics is read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PREDICTIONS = Counter(
    "shadowlab_predictions", "Predictions stored, by model version and status", ["model", "status"]
)
SCORING_ERRORS = Counter(
    "shadowlab_scoring_errors", "Items that got an error prediction, by reason", ["model", "reason"]
)
BATCH_ITEMS = Histogram(
    "shadowlab_scoring_batch_items",
    "Items per scoring batch",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024),
)
INFERENCE_SECONDS = Histogram(
    "shadowlab_inference_seconds",
    "ONNX Runtime time per scoring batch",
    ["model", "backend"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5),
)
SCORING_LAG = Histogram(
    "shadowlab_scoring_lag_seconds",
    "Time from an item's arrival to its prediction being stored",
    ["model"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)

# Live path (web processes): each time a model version's circuit breaker opens.
BREAKER_OPENINGS = Counter(
    "shadowlab_breaker_openings",
    "Times the live-path circuit breaker of a model version opened",
    ["model"],
)
# Rollout: canary or live versions rolled back, by the monitor (automatic) or a person.
ROLLBACKS = Counter(
    "shadowlab_rollbacks",
    "Canary or live model versions rolled back, by queue, version and trigger",
    ["queue", "model", "trigger"],
)

log = logging.getLogger(__name__)


def error_kind(reason: str) -> str:
    """Return a small fixed vocabulary for error reasons (labels must stay few)."""
    if reason.startswith("model could not be loaded"):
        return "model_unavailable"
    if reason.startswith("inference failed"):
        return "inference_failed"
    if reason.startswith("no result after"):
        return "gave_up"
    if reason.startswith("worker process died"):
        return "worker_lost"
    if "non-finite" in reason:
        return "non_finite_output"
    return "invalid_features"


class BacklogCollector(Collector):
    """Items waiting for a prediction from each shadow version (arrived in the last day)."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registration asks for the names; without this it would run the queries.
        yield GaugeMetricFamily("shadowlab_pending_items", "", labels=["queue", "model"])
        yield GaugeMetricFamily("shadowlab_items_awaiting_judgment", "", labels=["queue"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.db.models import Count, Exists, OuterRef, Q
        from django.utils import timezone

        from deployments.models import Prediction
        from deployments.selectors import deployments_scoring
        from inspections.models import Item

        pending = GaugeMetricFamily(
            "shadowlab_pending_items",
            "Items of the last 24 h still lacking a prediction from a deployed model version",
            labels=["queue", "model"],
        )
        awaiting = GaugeMetricFamily(
            "shadowlab_items_awaiting_judgment", "Items waiting for inspectors", labels=["queue"]
        )
        since = timezone.now() - timedelta(days=1)
        for deployment, scoring_since in deployments_scoring():
            count = (
                Item.objects.filter(
                    queue=deployment.queue,
                    received_at__gte=max(since, scoring_since),
                )
                .exclude(
                    Exists(
                        Prediction.objects.filter(
                            item=OuterRef("pk"), model_version=deployment.model_version
                        )
                    )
                )
                .count()
            )
            pending.add_metric([deployment.queue.slug, deployment.model_version.key], count)
        for row in Item.objects.values("queue__slug").annotate(
            n=Count("id", filter=Q(human_status=Item.HumanStatus.PENDING))
        ):
            awaiting.add_metric([row["queue__slug"]], row["n"])
        yield pending
        yield awaiting


class BrokerQueueCollector(Collector):
    """Messages waiting in the broker for a worker, per Celery queue (what KEDA scales on)."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("shadowlab_broker_queue_messages", "", labels=["queue"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from django.conf import settings
        from kombu.exceptions import ChannelError

        from shadowlab.celery import app

        family = GaugeMetricFamily(
            "shadowlab_broker_queue_messages",
            "Messages (scoring batches on `inference`) waiting in the broker, per Celery queue",
            labels=["queue"],
        )
        queues = sorted(
            {settings.CELERY_TASK_DEFAULT_QUEUE}
            | {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
        )
        try:
            with app.connection_for_read() as connection:
                connection.ensure_connection(max_retries=1, timeout=2)
                # Every kombu channel declares queues; the type stubs' StdChannel omits it.
                channel = cast(Any, connection.default_channel)
                for queue in queues:
                    try:
                        waiting = channel.queue_declare(queue=queue, passive=True).message_count
                    except ChannelError:
                        waiting = 0  # Redis drops an empty list: no key, no message
                    family.add_metric([queue], waiting)
        except Exception as exc:
            # No figure rather than a wrong one; the broker's own alerts say it is down.
            log.warning("broker queue lengths not read: %s", exc)
            return
        yield family


def host_registry() -> CollectorRegistry:
    """Return a registry of every process on this host (multiprocess mode) or of this one."""
    from prometheus_client import REGISTRY, multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


_backlog = BacklogCollector()
_broker_queues = BrokerQueueCollector()


def registry_for_export() -> CollectorRegistry:
    """Return what the web's /metrics reports: this host's processes plus the backlog."""
    registry = host_registry()
    for collector in (_backlog, _broker_queues):
        if collector not in getattr(registry, "_collector_to_names", {}):
            registry.register(collector)
    return registry
