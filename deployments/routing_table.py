"""This process's routing table: per queue, which versions decide new items, and the kill switch.

Each entry is built from the queue's deployments and RolloutControl and remembers the
`routing_version` it was built from. Every rollout move and kill-switch change moves that
number in the database, so an intake reads it (one small query) and rebuilds the entry when
it moved: gunicorn workers and the development server follow a rollout without a restart.

A rebuild loads and warms the scorers of the new live, canary and standby versions before
the entry is swapped in, so a process never routes an item to a version it has not loaded;
a version that fails to load stays in the entry with the reason, its items go to
inspectors, and the load is tried again after the breaker's open period.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from deployments import live, routing
from deployments.models import Deployment, ModelVersion, RolloutControl

log = logging.getLogger("shadowlab.live")


@dataclass(frozen=True)
class RoutedVersion:
    """A version the table routes to (or keeps warm), and why it is not loaded, if it is not."""

    model_version: ModelVersion
    role: str
    load_problem: str = ""


@dataclass(frozen=True)
class QueueRouting:
    """One queue's routing, as of a routing version."""

    queue_id: int
    routing_version: int
    kill_switch: bool = False
    live: RoutedVersion | None = None
    canary: RoutedVersion | None = None
    canary_share: float = 0.0
    standby: RoutedVersion | None = None
    shadow_ids: tuple[int, ...] = ()
    retry_at: float | None = None  # monotonic time to try failed loads again

    @property
    def scoring_version_ids(self) -> tuple[int, ...]:
        """Every version that scores the queue's new items in the background (all but retired)."""
        held = (self.live, self.canary, self.standby)
        return self.shadow_ids + tuple(r.model_version.pk for r in held if r is not None)

    @property
    def state(self) -> routing.RolloutState:
        return routing.RolloutState(
            live=self.live.model_version.pk if self.live else None,
            canary=self.canary.model_version.pk if self.canary else None,
            canary_share=self.canary_share,
            kill_switch=self.kill_switch,
        )

    def version(self, model_version_id: int) -> RoutedVersion:
        """Return the live or canary version with this id (a choice made from this entry)."""
        for routed in (self.live, self.canary):
            if routed is not None and routed.model_version.pk == model_version_id:
                return routed
        raise KeyError(f"model version {model_version_id} decides nothing on this queue")


_tables: dict[int, QueueRouting] = {}
_build_locks: dict[int, threading.Lock] = {}
_locks_lock = threading.Lock()


def routing_version_read(queue_id: int) -> int:
    """Return the queue's routing version in the database (0 before its first rollout change)."""
    version = (
        RolloutControl.objects.filter(queue_id=queue_id)
        .values_list("routing_version", flat=True)
        .first()
    )
    return version or 0


def queue_routing(*, queue_id: int, routing_version: int | None = None) -> QueueRouting:
    """Return this process's routing of the queue, rebuilt first if the rollout moved.

    routing_version is the queue's current one if the caller read it already (with the
    queue); otherwise it is read here.
    """
    if routing_version is None:
        routing_version = routing_version_read(queue_id)
    entry = _tables.get(queue_id)
    if entry is not None and _fresh(entry, routing_version):
        return entry
    with _build_lock(queue_id):
        # Another thread may have rebuilt it while this one waited: requests wait for the
        # rebuild rather than route by a table the rollout has left behind.
        entry = _tables.get(queue_id)
        if entry is not None and _fresh(entry, routing_version):
            return entry
        entry = _build(queue_id, routing_version)
        _tables[queue_id] = entry
    return entry


def _fresh(entry: QueueRouting, routing_version: int) -> bool:
    # Versions only grow, so an entry built from a later version than the one this request
    # read is newer still, not stale.
    if entry.routing_version < routing_version:
        return False
    return entry.retry_at is None or time.monotonic() < entry.retry_at


def _build_lock(queue_id: int) -> threading.Lock:
    with _locks_lock:
        lock = _build_locks.get(queue_id)
        if lock is None:
            lock = _build_locks[queue_id] = threading.Lock()
        return lock


def _build(queue_id: int, routing_version: int) -> QueueRouting:
    """Read the queue's rollout and load every version it needs; store nothing."""
    started = time.perf_counter()
    kill_switch = bool(
        RolloutControl.objects.filter(queue_id=queue_id)
        .values_list("kill_switch", flat=True)
        .first()
    )
    rows = list(
        Deployment.objects.filter(queue_id=queue_id)
        .exclude(role=Deployment.Role.RETIRED)
        .select_related("model_version")
    )
    by_role = {row.role: row for row in rows if row.role != Deployment.Role.SHADOW}
    routed: dict[str, RoutedVersion] = {}
    for role, row in by_role.items():
        routed[role] = RoutedVersion(row.model_version, role, _load(row.model_version))
    canary = by_role.get(Deployment.Role.CANARY)
    failed = any(version.load_problem for version in routed.values())
    entry = QueueRouting(
        queue_id=queue_id,
        routing_version=routing_version,
        kill_switch=kill_switch,
        live=routed.get(Deployment.Role.LIVE),
        canary=routed.get(Deployment.Role.CANARY),
        canary_share=canary.traffic_share if canary else 0.0,
        standby=routed.get(Deployment.Role.STANDBY),
        shadow_ids=tuple(
            row.model_version_id for row in rows if row.role == Deployment.Role.SHADOW
        ),
        retry_at=time.monotonic() + settings.SHADOWLAB["BREAKER_OPEN_SECONDS"] if failed else None,
    )
    log.info(
        "routing table of queue %s at version %s: live %s, canary %s (%.1f%%), standby %s, "
        "kill switch %s, built in %.1f ms",
        queue_id,
        routing_version,
        _described(entry.live),
        _described(entry.canary),
        entry.canary_share * 100,
        _described(entry.standby),
        "on" if kill_switch else "off",
        (time.perf_counter() - started) * 1000,
    )
    return entry


def _load(model_version: ModelVersion) -> str:
    """Load and warm the version's scorer here; return why it could not be, or ""."""
    try:
        live.live_scorer(model_version)
    except Exception as exc:
        log.warning("live model %s not loaded: %s: %s", model_version.key, type(exc).__name__, exc)
        return f"not loaded: {type(exc).__name__}"
    return ""


def _described(routed: RoutedVersion | None) -> str:
    if routed is None:
        return "none"
    return routed.model_version.key + (f" ({routed.load_problem})" if routed.load_problem else "")


def routing_tables_clear() -> None:
    """Forget every queue's routing (tests reuse primary keys and routing versions)."""
    with _locks_lock:
        _tables.clear()
        _build_locks.clear()


def _forget_after_fork() -> None:
    # A lock held by a parent's thread at fork time would stay held in the child forever.
    global _locks_lock
    _tables.clear()
    _build_locks.clear()
    _locks_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
