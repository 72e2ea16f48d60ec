"""Blue-green under load: switch live v1 -> v2 and back while clients keep submitting items."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest
from django.db import connections

from deployments import live, transitions
from deployments.models import Decision
from deployments.rollout import rollout_move, rollout_rollback
from inspections.models import Item, Queue
from inspections.services import item_create
from tests.deployments.rollout_factories import queue_quiet, rollout_canary, rollout_live

CLIENTS = 4
PHASE_SECONDS = 0.6


@dataclass(frozen=True)
class Submission:
    started: float
    finished: float
    item_id: int


@dataclass(frozen=True)
class Period:
    """Who may decide between two instants: the roles held by (version key, role) pairs."""

    start: float
    end: float
    deciders: frozenset[tuple[str, str]]


def _client(
    number: int,
    queue_id: int,
    rows: list[list[float]],
    stop: threading.Event,
    done: list[Submission],
    errors: list[BaseException],
) -> None:
    try:
        queue = Queue.objects.get(pk=queue_id)
        sent = 0
        while not stop.is_set():
            started = time.monotonic()
            item = item_create(
                queue=queue, external_id=f"c{number}-{sent}", features=rows[sent % len(rows)]
            )
            done.append(Submission(started, time.monotonic(), item.pk))
            sent += 1
    except BaseException as exc:  # the main thread reports it
        errors.append(exc)
    finally:
        connections.close_all()


@pytest.fixture(autouse=True)
def _patient_budget(settings):
    # Four clients on two shared cores: a stalled thread is not what this test is about.
    settings.SHADOWLAB = {**settings.SHADOWLAB, "LIVE_BUDGET_MS": 10_000.0}


# Real threads need each other's commits, so this test commits (transaction=True). It runs on
# SQLite too: the test database is a WAL file whose IMMEDIATE transactions queue writers.
@pytest.mark.django_db(transaction=True)
def test_switching_live_to_v2_and_back_routes_every_item_to_a_version_that_held_the_role(
    queue, model_version, second_version, digit_rows
):
    queue_quiet(queue)
    rollout_live(model_version)
    rollout_canary(second_version, 0.5)
    rows = [row.tolist() for row in digit_rows[:50]]
    stop = threading.Event()
    done: list[Submission] = []
    errors: list[BaseException] = []
    clients = [
        threading.Thread(target=_client, args=(n, queue.pk, rows, stop, done, errors))
        for n in range(CLIENTS)
    ]
    v1, v2 = model_version.key, second_version.key

    began = time.monotonic()
    for client in clients:
        client.start()
    time.sleep(PHASE_SECONDS)
    switch_from = time.monotonic()
    rollout_move(model_version=second_version, move=transitions.LIVE_SWITCH, actor=None)
    switch_to = time.monotonic()
    time.sleep(PHASE_SECONDS)
    back_from = time.monotonic()
    rollout_rollback(queue=queue, model_version=second_version, actor=None, reason="switch back")
    back_to = time.monotonic()
    time.sleep(PHASE_SECONDS)
    stop.set()
    for client in clients:
        client.join(timeout=60)
    ended = time.monotonic()

    assert not errors, errors
    assert all(not client.is_alive() for client in clients)
    # While a move commits, either side of it may be seen: the periods overlap there.
    periods = [
        Period(began, switch_to, frozenset({(v1, "live"), (v2, "canary")})),
        Period(switch_from, back_to, frozenset({(v2, "live")})),
        Period(back_from, ended, frozenset({(v1, "live")})),
    ]
    items = Item.objects.in_bulk([s.item_id for s in done])
    decisions = {
        d.item_id: (d.model_version.key, d.role, d.outcome)
        for d in Decision.objects.select_related("model_version")
    }
    assert len(items) == len(done) == Item.objects.count()
    assert len(done) >= 3 * CLIENTS, "too few submissions to say anything"
    seen: set[tuple[int, tuple[str, str]]] = set()
    for submission in done:
        item = items[submission.item_id]
        assert item.route == "model", (item.route, item.route_note)
        key, role, outcome = decisions[item.pk]
        assert outcome == "decided"
        held = [
            index
            for index, period in enumerate(periods)
            if period.start <= submission.finished
            and submission.started <= period.end
            and (key, role) in period.deciders
        ]
        assert held, f"item {item.pk} decided by {key} as {role}, which held no such role then"
        seen.update((index, (key, role)) for index in held)
    # Each period really had items decided by its own deciders: the switches took effect in
    # this process without a restart.
    assert (1, (v2, "live")) in seen
    assert (2, (v1, "live")) in seen
    assert (0, (v2, "canary")) in seen
    assert live.live_scorer_loaded(model_version) and live.live_scorer_loaded(second_version)
