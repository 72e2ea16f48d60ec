"""The rollback monitor on real rows: who is rolled back, what is recorded, who is told."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core import mail
from django.utils import timezone

from analytics.gate.policy import gate_policy_current, gate_policy_update
from deployments.models import AuditEvent, Deployment, MonitorCheck
from deployments.monitor import (
    KEEP_PER_VERSION,
    READ_FACTS,
    deployment_monitor,
    rollout_monitor_run,
)
from deployments.tasks import rollout_monitor
from inspections.models import Item, Judgment
from inspections.services import queue_create
from shadowlab import roles
from tests.deployments.monitor_factories import reference_profile_make, window_write
from tests.deployments.rollout_factories import deployment_make, version_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def admins(admin_user) -> list[User]:
    """Two admins with an address, one without, one inactive, and an ml_lead with one."""
    admin_user.email = "boss@example.com"
    admin_user.save()
    group = Group.objects.get(name=roles.ADMIN)
    second = User.objects.create_user("second", email="second@example.com")
    second.groups.add(group)
    User.objects.create_user("no-mail").groups.add(group)
    User.objects.create_user("gone", email="gone@example.com", is_active=False).groups.add(group)
    User.objects.create_user("lead2", email="lead@example.com").groups.add(
        Group.objects.get(name=roles.ML_LEAD)
    )
    return [admin_user, second]


@pytest.fixture
def judges(inspector) -> list[User]:
    return [inspector]


def _role(version) -> str:
    return Deployment.objects.get(model_version=version).role


def _checks(version, name: str) -> dict:
    check = MonitorCheck.objects.filter(model_version=version).first()
    assert check is not None
    return next(c for c in check.checks if c["name"] == name)


def test_a_worse_canary_is_rolled_back_with_an_audit_event_and_an_email(queue, admins, judges):
    live, canary = version_make(queue, "1"), version_make(queue, "2")
    deployment_make(live, "live")
    deployment_make(canary, "canary", 0.5)
    window_write(live, decisions=400, audited=150, agreed=145, inspectors=judges, role="live")
    window_write(canary, decisions=400, audited=150, agreed=75, inspectors=judges)

    checks = rollout_monitor_run()

    assert {c.model_version.key: c.verdict for c in checks} == {
        "digits-mlp:1": "ok",
        "digits-mlp:2": "breach",
    }
    assert (_role(live), _role(canary)) == ("live", "shadow")
    check = MonitorCheck.objects.get(model_version=canary)
    assert check.rolled_back
    assert check.role == "canary"
    assert check.policy == gate_policy_current(queue=queue)
    assert check.sentence.startswith("Automatic rollback of digits-mlp:2 (canary): Audit agree")
    assert check.outcome == (
        "digits-mlp:2 is back in shadow; the live version digits-mlp:1 decides its share again."
    )
    agreement = _checks(canary, "audit_agreement")
    assert (agreement["verdict"], agreement["n"], agreement["value"]) == ("breach", 150, 0.5)
    assert agreement["bound"] < 0.9
    assert _checks(canary, READ_FACTS)["decisions_in_window"] == 400

    move = AuditEvent.objects.get(action="deployment.rollback")
    assert (move.actor, move.actor_name) == (None, "system")
    assert move.evidence == f"monitor-check:{check.pk}"
    assert move.after["reason"] == check.sentence
    assert (move.before["role"], move.after["role"]) == ("canary", "shadow")
    event = AuditEvent.objects.get(action="monitor.rollback")
    assert event.evidence == move.evidence
    assert event.subject_id == str(check.pk)
    assert event.after["breaches"] == ["audit_agreement"]
    assert event.after["checks"] == check.checks

    assert sorted(m.to[0] for m in mail.outbox) == ["boss@example.com", "second@example.com"]
    message = mail.outbox[0]
    assert message.subject == "[ShadowLab] digits-mlp:2 rolled back automatically on Digits"
    assert check.sentence in message.body
    assert "- Audit agreement [breach]: Audit agreement is 50.0% on 150 judged" in message.body
    assert f"Evidence: monitor-check:{check.pk}" in message.body
    assert "http://localhost:8000/rollout/digits/" in message.body


def test_a_healthy_canary_over_the_same_volume_is_not_rolled_back(queue, admins, judges):
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.5)
    window_write(canary, decisions=400, audited=150, agreed=143, inspectors=judges)

    (check,) = rollout_monitor_run()

    assert check.verdict == "ok"
    assert not check.rolled_back
    assert _role(canary) == "canary"
    assert (
        check.sentence == "digits-mlp:2 (canary) is within every rollback threshold on its window."
    )
    assert not AuditEvent.objects.exists()
    assert mail.outbox == []


def test_a_tiny_window_is_not_rolled_back_however_bad_it_looks(queue, admins, judges):
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.05)
    window_write(canary, decisions=60, audited=30, agreed=0, failed=30, inspectors=judges)

    (check,) = rollout_monitor_run()

    assert check.verdict == "too_few"
    assert _role(canary) == "canary"
    agreement = _checks(canary, "audit_agreement")
    assert agreement["sentence"] == (
        "Not decided yet: 30 judged audit items in the window, 100 needed."
    )
    assert _checks(canary, "error_rate")["verdict"] == "too_few"
    assert mail.outbox == []


def test_a_worse_live_version_hands_over_to_its_standby(queue, admins, judges):
    standby, live = version_make(queue, "1"), version_make(queue, "2")
    deployment_make(standby, "standby")
    deployment_make(live, "live")
    window_write(live, decisions=300, audited=120, agreed=50, inspectors=judges, role="live")

    (check,) = rollout_monitor_run()

    assert check.rolled_back
    assert (_role(standby), _role(live)) == ("live", "shadow")
    assert (
        check.outcome == "digits-mlp:2 is back in shadow; the standby digits-mlp:1 is live again."
    )
    moves = AuditEvent.objects.filter(action="deployment.rollback")
    assert {(e.subject_id, e.after["role"]) for e in moves} == {
        (str(Deployment.objects.get(model_version=live).pk), "shadow"),
        (str(Deployment.objects.get(model_version=standby).pk), "live"),
    }
    assert {e.evidence for e in moves} == {f"monitor-check:{check.pk}"}
    assert len(mail.outbox) == 2


def test_a_worse_live_version_without_a_standby_leaves_every_item_to_inspectors(
    queue, admins, judges
):
    live = version_make(queue, "2")
    deployment_make(live, "live")
    window_write(live, decisions=300, audited=120, agreed=50, inspectors=judges, role="live")

    (check,) = rollout_monitor_run()

    assert _role(live) == "shadow"
    assert not Deployment.objects.filter(queue=queue, role__in=["live", "canary"]).exists()
    assert check.outcome == (
        "digits-mlp:2 is back in shadow; there was no standby, so inspectors decide every item now."
    )


def test_a_second_run_on_the_same_window_rolls_nothing_back_again(queue, admins, judges):
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.5)
    window_write(canary, decisions=400, audited=150, agreed=60, inspectors=judges)
    now = timezone.now()

    rollout_monitor_run(now=now)
    again = rollout_monitor_run(now=now)

    assert again == []
    assert MonitorCheck.objects.filter(model_version=canary).count() == 1
    assert AuditEvent.objects.filter(action="deployment.rollback").count() == 1
    assert len(mail.outbox) == 2


def test_a_look_that_races_an_earlier_rollback_records_the_breach_quietly(queue, admins, judges):
    canary = version_make(queue, "2")
    deployment = deployment_make(canary, "canary", 0.5)
    window_write(canary, decisions=400, audited=150, agreed=60, inspectors=judges)
    rollout_monitor_run()
    # A second look that read the deployment while it was still canary.
    check = deployment_monitor(deployment=deployment, now=timezone.now(), max_rows=20000)

    assert check.verdict == "breach"
    assert not check.rolled_back
    assert check.outcome.startswith("Not rolled back again: digits-mlp:2 is in shadow on digits")
    assert AuditEvent.objects.filter(action="deployment.rollback").count() == 1
    assert AuditEvent.objects.filter(action="monitor.rollback").count() == 1


def test_the_window_starts_no_earlier_than_the_role_nor_the_policy_window(
    queue, admins, judges, admin_user
):
    gate_policy_update(queue=queue, values={"rollback_window_minutes": 30}, actor=admin_user)
    canary = version_make(queue, "2")
    deployment = deployment_make(canary, "canary", 0.5)
    now = timezone.now()
    # Bad decisions from before the window, then from before the version took its role.
    window_write(canary, decisions=400, audited=150, agreed=0, inspectors=judges,
                 at=now - timedelta(minutes=45))  # fmt: skip
    Deployment.objects.filter(pk=deployment.pk).update(started_at=now - timedelta(minutes=10))
    window_write(canary, decisions=400, audited=150, agreed=0, inspectors=judges,
                 at=now - timedelta(minutes=20))  # fmt: skip

    (check,) = rollout_monitor_run(now=now)

    assert check.verdict == "too_few"
    assert check.window_start == now - timedelta(minutes=10)
    assert check.window_end == now
    assert _role(canary) == "canary"


def test_failed_decisions_roll_a_version_back_on_the_error_rate(queue, admins, judges):
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.5)
    window_write(canary, decisions=400, failed=80, inspectors=judges)

    (check,) = rollout_monitor_run()

    assert check.rolled_back
    errors = _checks(canary, "error_rate")
    assert (errors["verdict"], errors["value"]) == ("breach", 0.2)
    assert errors["bound"] > 0.05
    assert _checks(canary, "audit_agreement")["verdict"] == "too_few"


def test_slow_decisions_roll_a_version_back_on_the_latency_p95(queue, admins, judges):
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.5)
    window_write(canary, decisions=400, latency_ms=[10.0, 10.0, 10.0, 250.0])

    (check,) = rollout_monitor_run()

    assert check.rolled_back
    latency = _checks(canary, "latency_p95")
    assert (latency["verdict"], latency["value"], latency["bound"]) == ("breach", 250.0, 250.0)


def test_inputs_moved_away_from_the_reference_roll_a_version_back_on_drift(queue, admins, judges):
    rng = np.random.default_rng(4)
    drifting, steady = version_make(queue, "2"), version_make(queue, "3", name="other")
    reference_profile_make(drifting, rng.normal(size=(2000, 64)))
    reference_profile_make(steady, rng.normal(size=(2000, 64)))
    deployment_make(drifting, "canary", 0.5)
    deployment_make(steady, "live")
    window_write(drifting, decisions=300, features=rng.normal(loc=1.0, size=(300, 64)))
    window_write(steady, decisions=300, features=rng.normal(size=(300, 64)), role="live")

    rollout_monitor_run()

    assert (_role(drifting), _role(steady)) == ("shadow", "live")
    moved = _checks(drifting, "drift")
    assert (moved["verdict"], moved["n"], moved["value"]) == ("breach", 300, 1.0)
    kept = _checks(steady, "drift")
    assert kept["verdict"] == "ok"
    assert kept["value"] <= 0.05
    assert _checks(steady, READ_FACTS)["features"] == 64


def test_a_failure_on_one_version_is_recorded_and_the_others_are_still_checked(
    queue, admins, judges
):
    other = queue_create(name="Parts", slug="parts", labels=["ok", "dent"], input_width=3)
    broken, worse = version_make(other, "1", name="parts-net"), version_make(queue, "2")
    # A profile built for another input width: comparing inputs with it cannot work.
    reference_profile_make(broken, np.random.default_rng(1).normal(size=(500, 5)))
    deployment_make(broken, "canary", 0.5)
    deployment_make(worse, "canary", 0.5)
    window_write(broken, decisions=300, features=np.zeros((1, 3)))
    window_write(worse, decisions=400, audited=150, agreed=60, inspectors=judges)

    checks = rollout_monitor_run()

    assert [c.model_version.key for c in checks] == ["digits-mlp:2"]
    assert _role(worse) == "shadow"
    failure = MonitorCheck.objects.get(model_version=broken)
    assert failure.verdict == "error"
    assert failure.sentence.startswith("The monitor could not check parts-net:1: ValueError")
    assert _role(broken) == "canary"


def test_audit_items_whose_panel_disagreed_are_left_out_of_agreement(
    queue, admins, inspector, inspector2
):
    gate_policy_update(
        queue=queue, values={"rollback_min_audited": 10}, actor=User.objects.get(username="boss")
    )
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.5)
    items = window_write(
        canary, decisions=300, audited=40, agreed=40, inspectors=[inspector, inspector2]
    )
    # The second inspector says something else on ten of the items.
    for item in items[:10]:
        Judgment.objects.filter(item=item, inspector=inspector2).update(label="other")

    rollout_monitor_run()

    agreement = _checks(canary, "audit_agreement")
    assert (agreement["n"], agreement["value"]) == (30, 1.0)
    assert "10 more audit items left out: their inspectors disagreed" in agreement["sentence"]
    assert _checks(canary, READ_FACTS)["audit_items_split"] == 10


def test_only_the_latest_looks_are_kept_besides_the_one_that_rolled_back(queue, admins, judges):
    healthy, worse = version_make(queue, "1"), version_make(queue, "2")
    deployment_make(healthy, "live")
    deployment_make(worse, "canary", 0.5)
    window_write(worse, decisions=400, audited=150, agreed=60, inspectors=judges)
    start = timezone.now()

    for minute in range(KEEP_PER_VERSION + 5):
        rollout_monitor_run(now=start + timedelta(minutes=minute))

    assert MonitorCheck.objects.filter(model_version=healthy).count() == KEEP_PER_VERSION
    kept = MonitorCheck.objects.filter(model_version=worse)
    assert [c.rolled_back for c in kept] == [True]
    latest = MonitorCheck.objects.filter(model_version=healthy).first()
    assert latest.created_at == start + timedelta(minutes=KEEP_PER_VERSION + 4)


def test_the_task_looks_at_every_version(queue, admins, judges):
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.5)
    window_write(canary, decisions=400, audited=150, agreed=60, inspectors=judges)

    rollout_monitor()

    assert _role(canary) == "shadow"


def test_beat_runs_the_monitor_every_monitor_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["monitor-rollouts"]
    assert entry["task"] == "deployments.tasks.rollout_monitor"
    assert entry["schedule"] == settings.SHADOWLAB["MONITOR_SECONDS"] == 60
    assert entry["options"]["expires"] == entry["schedule"]


def test_stored_inputs_that_are_not_rows_of_numbers_are_left_out_of_drift(queue, admins):
    rng = np.random.default_rng(5)
    version = version_make(queue, "2")
    reference_profile_make(version, rng.normal(size=(2000, 64)))
    deployment_make(version, "live")
    items = window_write(version, decisions=300, features=rng.normal(size=(300, 64)), role="live")
    Item.objects.filter(pk=items[0].pk).update(features=["x"] * 64)
    Item.objects.filter(pk=items[1].pk).update(features=[1.0] * 63)

    rollout_monitor_run()

    drift = _checks(version, "drift")
    assert (drift["verdict"], drift["n"]) == ("ok", 298)
