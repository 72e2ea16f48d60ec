"""What the chaos checks share: a stream of items, a busy worker child to kill, the counts."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import psutil
import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models import Count
from django.test import Client

from deployments.models import ModelVersion, Prediction
from inspections.models import Item


def _on_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith("redis")


def _on_postgresql() -> bool:
    return connection.vendor == "postgresql"


# CI runs the suite on PostgreSQL and Redis, then the worker tests again in the embedded mode
# (SQLite and the file broker): each check runs where the part it breaks is the real one.
redis_only = pytest.mark.skipif(
    not _on_redis(), reason="checks Redis; this run uses the file broker (embedded mode)"
)
file_broker_only = pytest.mark.skipif(
    _on_redis(), reason="checks the embedded mode's file broker; this run uses Redis"
)
postgresql_only = pytest.mark.skipif(
    not _on_postgresql(), reason="checks PostgreSQL; this run uses SQLite (embedded mode)"
)


@dataclass
class ItemStream:
    """Post `count` items through the batch API in `chunk`s, spread evenly over `seconds`.

    Runs in a thread of its own (with its own database connection), so that the test can
    break things while items arrive. Every answer's status is kept.
    """

    token: str
    rows: np.ndarray
    count: int
    chunk: int = 20
    seconds: float = 10.0
    prefix: str = "s"
    first_pixel: float | None = None
    statuses: list[int] = field(default_factory=list)
    sent: int = 0
    error: BaseException | None = None
    _thread: threading.Thread | None = None

    def payload(self, start: int) -> list[dict[str, object]]:
        items = []
        for index in range(start, min(start + self.chunk, self.count)):
            features = self.rows[index % len(self.rows)].astype(float).tolist()
            if self.first_pixel is not None:
                features[0] = self.first_pixel
            items.append({"external_id": f"{self.prefix}-{index}", "features": features})
        return items

    def run(self) -> None:
        client = Client()
        chunks = range(0, self.count, self.chunk)
        pause = self.seconds / max(1, len(chunks))
        started = time.monotonic()
        try:
            for number, start in enumerate(chunks):
                delay = started + number * pause - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                response = client.post(
                    "/api/v1/queues/digits/items:batch",
                    {"items": self.payload(start)},
                    content_type="application/json",
                    headers={"authorization": f"Bearer {self.token}"},
                )
                self.statuses.append(response.status_code)
                if response.status_code == 200:
                    self.sent += response.json()["created"]
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            connections.close_all()

    def start(self) -> ItemStream:
        self._thread = threading.Thread(target=self.run, name="item-stream", daemon=True)
        self._thread.start()
        return self

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float = 120) -> None:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the item stream did not finish"
        if self.error is not None:
            raise self.error
        assert set(self.statuses) == {200}, f"intake answered {sorted(set(self.statuses))}"
        assert self.sent == self.count, f"{self.sent} of {self.count} items were stored"


def pool_children(worker_pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(worker_pid).children()
    except psutil.NoSuchProcess:
        return []


def busy_child_kill(
    worker_pid: int,
    *,
    signal_group: bool = False,
    timeout: float = 20,
    while_: Callable[[], bool] | None = None,
) -> int | None:
    """SIGKILL a pool child of the worker while it runs (state R), as a crash would; its pid.

    With signal_group, the worker's main process and all its children die at that moment.
    With while_, give up (None) once it turns false and no child was seen running: the work
    that kept children busy is over.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if while_ is not None and not while_():
            return None
        for child in pool_children(worker_pid):
            try:
                if child.status() == psutil.STATUS_RUNNING:
                    if signal_group:
                        os.killpg(worker_pid, signal.SIGKILL)
                    else:
                        child.send_signal(signal.SIGKILL)
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        time.sleep(0.002)
    raise AssertionError("no pool child was seen running")


def predictions_of(version: ModelVersion) -> int:
    return Prediction.objects.filter(model_version=version).count()


def duplicate_predictions() -> int:
    """Count the (item, version) pairs stored more than once (the constraint says never)."""
    return (
        Prediction.objects.values("item", "model_version")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )


def unscored_items(version: ModelVersion) -> int:
    return Item.objects.exclude(predictions__model_version=version).count()


def every_item_scored(versions: Sequence[ModelVersion]) -> Callable[[], bool]:
    items = Item.objects.count

    def done() -> bool:
        total = items()
        return all(predictions_of(version) >= total for version in versions)

    return done
