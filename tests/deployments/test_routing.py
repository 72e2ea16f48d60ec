"""Routing at intake: who decides each new item, audit samples, deferral, fallbacks, refresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone
from scipy import stats

from deployments import live, routing, routing_table, sweeper, transitions
from deployments.models import AuditEvent, Decision, Deployment
from deployments.rollout import (
    kill_switch_set,
    rollout_move,
    rollout_rollback,
    routing_version_bump,
)
from deployments.routing_table import queue_routing
from inspections.models import Item
from inspections.services import item_create, items_intake_batch
from tests.deployments.live_models import failing_classifier, slow_classifier, version_with_model
from tests.deployments.rollout_factories import (
    deployment_make,
    queue_quiet,
    rollout_canary,
    rollout_live,
    version_make,
)

ITEMS = 10_000
# A share outside this two-sided binomial interval happens by chance once in a million runs.
ALPHA = 1e-6


def _within_binomial(count: int, n: int, p: float) -> bool:
    low, high = stats.binom.interval(1 - ALPHA, n, p)
    return low <= count <= high


@pytest.fixture(autouse=True)
def _patient_budget(settings):
    # Two shared cores can stall a scoring thread past the 50 ms budget; tests that are not
    # about the budget must not see such a timeout as a routing failure.
    settings.SHADOWLAB = {**settings.SHADOWLAB, "LIVE_BUDGET_MS": 10_000.0}


# The routing rules on their own (no database)


@pytest.mark.parametrize("share", [0.05, 0.25, 0.5, 0.95])
def test_the_canary_takes_its_share_of_10000_items_within_binomial_bounds(share):
    chosen = sum(
        routing.canary_chosen(queue_id=3, external_id=f"scan-{n}", share=share)
        for n in range(ITEMS)
    )
    assert _within_binomial(chosen, ITEMS, share), chosen


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.5])
def test_the_audit_sample_is_its_rate_on_the_canary_and_on_the_live_version_alike(rate):
    # Independent salts: the audit share holds within either version's items.
    ids = [f"item-{n}" for n in range(2 * ITEMS)]
    canary = [i for i in ids if routing.canary_chosen(queue_id=1, external_id=i, share=0.3)]
    current = [i for i in ids if not routing.canary_chosen(queue_id=1, external_id=i, share=0.3)]
    for group in (canary, current):
        audited = sum(routing.audit_chosen(queue_id=1, external_id=i, rate=rate) for i in group)
        assert _within_binomial(audited, len(group), rate), (len(group), audited)


def test_the_same_item_hashes_the_same_in_another_process():
    # Python's hash() of a string changes with PYTHONHASHSEED; the routing hash must not.
    ids = [f"retry-{n}" for n in range(50)]
    here = [routing.unit_hash(9, i, b"route-version") for i in ids]
    script = (
        "import json, sys; from deployments import routing; ids = json.load(sys.stdin); "
        "print(json.dumps([routing.unit_hash(9, i, b'route-version') for i in ids]))"
    )
    there = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(ids),
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert json.loads(there.stdout) == here
    assert all(0.0 <= value < 1.0 for value in here)


def test_the_queue_is_part_of_the_hash():
    ids = [f"x-{n}" for n in range(2000)]
    one = [routing.canary_chosen(queue_id=1, external_id=i, share=0.5) for i in ids]
    two = [routing.canary_chosen(queue_id=2, external_id=i, share=0.5) for i in ids]
    assert one != two


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (routing.RolloutState(), routing.VersionChoice(None)),
        (
            routing.RolloutState(live=1, kill_switch=True),
            routing.VersionChoice(None, route_note="kill switch on"),
        ),
        (routing.RolloutState(kill_switch=True), routing.VersionChoice(None)),
        (routing.RolloutState(live=1), routing.VersionChoice(1, "live")),
        (
            routing.RolloutState(live=1, canary=2, canary_share=1.0),
            routing.VersionChoice(2, "canary"),
        ),
        (
            routing.RolloutState(live=1, canary=2, canary_share=0.0),
            routing.VersionChoice(1, "live"),
        ),
        (routing.RolloutState(canary=2, canary_share=0.0), routing.VersionChoice(None)),
    ],
)
def test_the_version_asked_follows_the_rollout_state(state, expected):
    assert routing.version_choose(state=state, queue_id=1, external_id="a") == expected


POLICY = routing.Policy(
    audit_rate=0.0, deferral_threshold=0.8, double_inspection_rate=0.0, panel_size=2
)


@pytest.mark.parametrize(
    ("answer", "route", "outcome", "note"),
    [
        (routing.ModelAnswer("7", 0.95), "model", "decided", ""),
        (routing.ModelAnswer("7", 0.8), "model", "decided", ""),
        (routing.ModelAnswer("7", 0.79), "human", "deferred", "under the queue's threshold 0.800"),
        (routing.ModelAnswer(None, None, "circuit open"), "human", "failed", "m:1 failed: circuit"),
    ],
)
def test_an_answer_settles_the_route(answer, route, outcome, note):
    settled = routing.route_settle(
        choice=routing.VersionChoice(1, "live"),
        answer=answer,
        model_key="m:1",
        policy=POLICY,
        queue_id=1,
        external_id="a",
    )
    assert (settled.route, settled.outcome) == (route, outcome)
    assert note in settled.route_note
    if route == "model":
        assert (settled.human_status, settled.judgments_needed) == ("not_needed", 0)
    else:
        assert (settled.human_status, settled.judgments_needed) == ("pending", 1)


# Routing at intake, with real ONNX models


def _expected(model_version, rows):
    runner = live.live_scorer(model_version).runner
    result = runner.predict(rows)
    labels = [model_version.labels[int(i)] for i in result.label_indices]
    return labels, result.probabilities.max(axis=1)


@pytest.mark.django_db
def test_a_live_model_decides_a_new_item_and_the_api_says_which_model(
    queue, model_version, api_token, digit_rows
):
    queue_quiet(queue)
    rollout_live(model_version)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token}")

    response = client.post(
        "/api/v1/queues/digits/items",
        {"external_id": "scan-1", "features": digit_rows[0].tolist()},
        content_type="application/json",
    )

    assert response.status_code == 201
    body = response.json()
    (label,), (confidence,) = _expected(model_version, digit_rows[:1])
    assert body["route"] == "model"
    assert body["decision"]["label"] == label
    assert body["decision"]["model"] == "digits-mlp:1"
    assert body["decision"]["confidence"] == pytest.approx(float(confidence), abs=1e-5)
    item = Item.objects.get()
    assert (item.route, item.human_status, item.judgments_needed) == ("model", "not_needed", 0)
    decision = Decision.objects.get(item=item)
    assert (decision.role, decision.outcome, decision.label) == ("live", "decided", label)
    assert decision.latency_ms > 0

    read = client.get(f"/api/v1/items/{item.pk}").json()
    assert (read["route"], read["status"], read["decision"]) == ("model", "complete", label)
    assert read["decided_by"] == "digits-mlp:1"


@pytest.mark.django_db
def test_canary_and_live_split_10000_items_by_share_and_a_retry_routes_the_same_way(
    queue, model_version, second_version
):
    queue_quiet(queue)
    rollout_live(model_version)
    rollout_canary(second_version, 0.25)
    ids = [f"scan-{n}" for n in range(ITEMS)]
    features = [float(n % 17) for n in range(64)]

    def submit() -> dict[str, tuple[int, str]]:
        for start in range(0, ITEMS, 1000):
            results = items_intake_batch(
                queue=queue,
                items=[{"external_id": i, "features": features} for i in ids[start : start + 1000]],
            )
            assert {result.status for result in results} == {201}
        return {
            external_id: (version_id, role)
            for external_id, version_id, role in Decision.objects.values_list(
                "item__external_id", "model_version_id", "role"
            )
        }

    first = submit()
    assert len(first) == ITEMS
    canary = sum(role == "canary" for _, role in first.values())
    assert _within_binomial(canary, ITEMS, 0.25), canary
    assert {v for v, role in first.values() if role == "canary"} == {second_version.pk}
    assert {v for v, role in first.values() if role == "live"} == {model_version.pk}
    assert Item.objects.filter(route="model").count() == ITEMS

    # The client never heard back and sends everything again (the first attempt was lost).
    Item.objects.all().delete()
    assert submit() == first


@pytest.mark.django_db
def test_the_audit_sample_is_the_queues_rate_of_decided_items_and_goes_to_one_inspector(
    queue, model_version
):
    queue_quiet(queue, audit_rate=0.1)
    rollout_live(model_version)
    features = [float(n % 13) for n in range(64)]
    for start in range(0, ITEMS, 1000):
        items_intake_batch(
            queue=queue,
            items=[
                {"external_id": f"a-{n}", "features": features} for n in range(start, start + 1000)
            ],
        )
    decided = Item.objects.filter(route="model")
    assert decided.count() == ITEMS
    audited = decided.filter(audit_sample=True)
    assert _within_binomial(audited.count(), ITEMS, 0.1), audited.count()
    assert set(audited.values_list("human_status", "judgments_needed")) == {("pending", 1)}
    assert set(
        decided.filter(audit_sample=False).values_list("human_status", "judgments_needed")
    ) == {("not_needed", 0)}


@pytest.mark.django_db
def test_a_decision_less_confident_than_the_threshold_is_deferred_to_inspectors(
    queue, model_version, digit_rows
):
    queue_quiet(queue, deferral_threshold=0.9)
    rollout_live(model_version)
    rows = digit_rows[:150]
    items = [
        item_create(queue=queue, external_id=f"d{n}", features=row.tolist())
        for n, row in enumerate(rows)
    ]
    labels, confidences = _expected(model_version, rows)

    outcomes = set()
    for item, label, confidence in zip(items, labels, confidences, strict=True):
        item.refresh_from_db()
        decision = Decision.objects.get(item=item)
        assert decision.label == label
        if confidence < 0.9:
            assert (decision.outcome, item.route, item.human_status) == (
                "deferred",
                "human",
                "pending",
            )
            assert "under the queue's threshold 0.900" in item.route_note
        else:
            assert (decision.outcome, item.route, item.human_status) == (
                "decided",
                "model",
                "not_needed",
            )
            assert item.route_note == ""
        outcomes.add(decision.outcome)
    assert outcomes == {"deferred", "decided"}


@pytest.mark.django_db
def test_a_model_that_fails_at_run_time_sends_the_item_to_inspectors_with_the_reason(
    queue, digit_rows
):
    queue_quiet(queue)
    failing = version_with_model(queue, "1", failing_classifier())
    rollout_live(failing)

    item = item_create(queue=queue, external_id="f1", features=digit_rows[0].tolist())

    assert (item.route, item.human_status, item.judgments_needed) == ("human", "pending", 1)
    assert item.route_note.startswith("digits-live-test:1 failed: inference failed")
    decision = Decision.objects.get(item=item)
    assert (decision.outcome, decision.role, decision.label) == ("failed", "live", "")
    assert "Gather" in decision.reason or "out of data bounds" in decision.reason


@pytest.mark.django_db
def test_a_slow_model_times_out_then_its_open_breaker_sends_items_straight_to_inspectors(
    queue, digit_rows, settings
):
    settings.SHADOWLAB = {
        **settings.SHADOWLAB,
        "LIVE_BUDGET_MS": 20.0,
        "BREAKER_FAILURES": 2,
        "BREAKER_OPEN_SECONDS": 600.0,
    }
    queue_quiet(queue)
    slow = version_with_model(queue, "1", slow_classifier(rounds=20_000))
    rollout_live(slow)

    items = [
        item_create(queue=queue, external_id=f"s{n}", features=digit_rows[n].tolist())
        for n in range(3)
    ]

    reasons = [Decision.objects.get(item=item).reason for item in items]
    assert reasons[:2] == ["no answer within 20 ms"] * 2
    assert reasons[2] == "circuit open"
    assert all(item.route == "human" and item.human_status == "pending" for item in items)
    assert items[2].route_note == "digits-live-test:1 failed: circuit open"
    assert set(Decision.objects.values_list("outcome", flat=True)) == {"failed"}


@pytest.mark.django_db
def test_the_kill_switch_sends_items_to_inspectors_until_it_is_off_again(
    queue, model_version, admin_user, digit_rows
):
    queue_quiet(queue)
    rollout_live(model_version)
    features = digit_rows[0].tolist()

    kill_switch_set(queue=queue, on=True, actor=admin_user)
    stopped = item_create(queue=queue, external_id="k1", features=features)
    kill_switch_set(queue=queue, on=False, actor=admin_user)
    resumed = item_create(queue=queue, external_id="k2", features=features)

    assert (stopped.route, stopped.route_note, stopped.human_status) == (
        "human",
        "kill switch on",
        "pending",
    )
    assert not Decision.objects.filter(item=stopped).exists()
    assert resumed.route == "model"
    assert Decision.objects.get(item=resumed).model_version == model_version


@pytest.mark.django_db
def test_without_a_canary_or_live_model_items_go_to_inspectors_with_no_note(
    queue, shadow_model, digit_rows
):
    item = item_create(queue=queue, external_id="h1", features=digit_rows[0].tolist())
    assert (item.route, item.route_note) == ("human", "")
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_the_routing_table_follows_rollout_moves_without_a_restart(
    queue, model_version, second_version, digit_rows
):
    queue_quiet(queue)
    rollout_live(model_version)
    features = digit_rows[0].tolist()
    counter = iter(range(10_000))

    def deciders(n: int) -> set[tuple[str, str]]:
        made = [
            item_create(queue=queue, external_id=f"r{next(counter)}", features=features)
            for _ in range(n)
        ]
        return {(item.decision.model_version.version, item.decision.role) for item in made}

    assert deciders(20) == {("1", "live")}

    rollout_canary(second_version, 0.5)
    assert deciders(60) == {("1", "live"), ("2", "canary")}

    rollout_move(model_version=second_version, move=transitions.LIVE_SWITCH, actor=None)
    assert deciders(20) == {("2", "live")}
    table = queue_routing(queue_id=queue.pk)
    assert table.standby is not None and table.standby.model_version == model_version
    assert live.live_scorer_loaded(model_version), "the standby stays warm for a switch back"

    rollout_rollback(queue=queue, model_version=second_version, actor=None, reason="test")
    assert deciders(20) == {("1", "live")}


@pytest.mark.django_db
def test_a_rebuild_loads_the_new_versions_before_any_item_is_routed_to_them(
    queue, model_version, second_version
):
    rollout_live(model_version)
    live.live_scorers_clear()
    routing_table.routing_tables_clear()
    rollout_canary(second_version, 0.3)
    assert not live.live_scorer_loaded(second_version)

    table = queue_routing(queue_id=queue.pk)

    assert table.canary is not None and table.canary.load_problem == ""
    assert live.live_scorer_loaded(second_version) and live.live_scorer_loaded(model_version)
    # Unchanged routing version: the same table, no queries beyond the version's own.
    assert queue_routing(queue_id=queue.pk) is table


@pytest.mark.django_db
def test_a_version_this_process_cannot_load_sends_its_items_to_inspectors(queue, digit_rows):
    queue_quiet(queue)
    broken = version_make(queue, "9")  # its file was never stored
    deployment_make(broken, "live")
    routing_version_bump(queue)

    item = item_create(queue=queue, external_id="b1", features=digit_rows[0].tolist())

    assert item.route == "human"
    assert item.route_note.startswith("digits-mlp:9 failed: model unavailable: not loaded")
    decision = Decision.objects.get(item=item)
    assert decision.outcome == "failed" and decision.reason.startswith("model unavailable")


# Shadow scoring keeps measuring every deployed version


@pytest.mark.django_db
def test_new_items_are_queued_for_every_deployed_version_but_a_retired_one(
    queue, digit_rows, django_capture_on_commit_callbacks
):
    versions = {role: version_make(queue, str(n)) for n, role in enumerate(Deployment.Role.values)}
    for role, version in versions.items():
        deployment_make(version, role)
    with (
        mock.patch("deployments.tasks.score_items.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        item = item_create(queue=queue, external_id="e1", features=digit_rows[0].tolist())
    reached = {call.args[0] for call in delay.call_args_list}
    assert reached == {versions[r].pk for r in ("shadow", "canary", "live", "standby")}
    assert all(call.args[1] == [item.pk] for call in delay.call_args_list)


@pytest.mark.django_db
def test_the_sweeper_requeues_what_a_live_version_missed_since_its_shadow_start(
    queue, model_version, digit_rows, settings
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "SWEEP_GRACE_SECONDS": 60}
    rollout_live(model_version)
    now = timezone.now()
    # It went in shadow two hours ago and live half an hour ago; the item came in between
    # and its message was lost.
    AuditEvent.objects.filter(action="deployment.shadow_start").update(
        created_at=now - timedelta(hours=2)
    )
    Deployment.objects.update(started_at=now - timedelta(minutes=30))
    with mock.patch("deployments.tasks.score_items.delay"):
        item = item_create(queue=queue, external_id="lost", features=digit_rows[0].tolist())
    Item.objects.filter(pk=item.pk).update(received_at=now - timedelta(hours=1))
    before = Item.objects.create(
        queue=queue,
        external_id="older",
        features=digit_rows[1].tolist(),
        received_at=now - timedelta(hours=3),
    )

    with mock.patch("deployments.tasks.score_items.delay") as delay:
        summary = sweeper.unscored_sweep(now=now)

    assert summary.requeued == 1
    delay.assert_called_once_with(model_version.pk, [item.pk])
    assert before.pk not in delay.call_args.args[1]
