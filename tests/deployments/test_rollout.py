"""Rollout moves on the Deployment rows: one transaction, every change audited, constraints held."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from prometheus_client import REGISTRY

from deployments import transitions
from deployments.models import AuditEvent, Deployment, RolloutControl
from deployments.rollout import kill_switch_set, rollout_move, rollout_rollback
from deployments.services import deployment_retire, deployment_shadow_start
from deployments.transitions import TransitionRefused
from tests.deployments.rollout_factories import deployment_make, version_make

pytestmark = pytest.mark.django_db

LEGAL_AFTER = {
    (transitions.NOT_DEPLOYED, transitions.SHADOW_START): ("shadow", 0.0),
    (transitions.RETIRED, transitions.SHADOW_START): ("shadow", 0.0),
    (transitions.SHADOW, transitions.CANARY_START): ("canary", 0.05),
    (transitions.CANARY, transitions.CANARY_SHARE_RAISE): ("canary", 0.2),
    (transitions.CANARY, transitions.LIVE_SWITCH): ("live", 1.0),
    (transitions.CANARY, transitions.ROLLBACK): ("shadow", 0.0),
    (transitions.LIVE, transitions.ROLLBACK): ("shadow", 0.0),
    (transitions.SHADOW, transitions.RETIRE): ("retired", 0.0),
    (transitions.STANDBY, transitions.RETIRE): ("retired", 0.0),
}
SHARE_ASKED = {transitions.CANARY_START: 0.05, transitions.CANARY_SHARE_RAISE: 0.2}
PAIRS = [(role, move) for role in transitions.ROLES for move in transitions.MOVES]


def _snapshot():
    return list(Deployment.objects.order_by("id").values_list("id", "role", "traffic_share"))


@pytest.mark.parametrize(("role", "move"), PAIRS, ids=lambda p: str(p))
def test_each_move_from_each_role_changes_the_rows_or_is_refused_with_nothing_changed(
    queue, admin_user, role, move
):
    version = version_make(queue, "1")
    if role != transitions.NOT_DEPLOYED:
        deployment_make(version, role)
    before = _snapshot()

    if (role, move) not in LEGAL_AFTER:
        with pytest.raises(TransitionRefused, match=r"digits-mlp:1|shadow version"):
            rollout_move(
                model_version=version, move=move, actor=admin_user, share=SHARE_ASKED.get(move)
            )
        assert _snapshot() == before
        assert not AuditEvent.objects.exists()
        return

    deployment = rollout_move(
        model_version=version, move=move, actor=admin_user, share=SHARE_ASKED.get(move)
    )
    deployment.refresh_from_db()
    assert (deployment.role, deployment.traffic_share) == LEGAL_AFTER[(role, move)]
    event = AuditEvent.objects.get()
    assert event.action == f"deployment.{move}"
    assert event.actor == admin_user
    assert event.queue == queue
    assert event.after["role"] == deployment.role
    assert event.after["traffic_share"] == deployment.traffic_share
    if role == transitions.NOT_DEPLOYED:
        assert event.before is None
    else:
        assert event.before["role"] == role


def test_a_live_switch_demotes_the_live_version_and_retires_the_old_standby_in_one_step(
    queue, admin_user
):
    old_standby, live, canary = (version_make(queue, v) for v in ("1", "2", "3"))
    deployment_make(old_standby, "standby")
    deployment_make(live, "live")
    deployment_make(canary, "canary", 0.3)

    rollout_move(
        model_version=canary,
        move=transitions.LIVE_SWITCH,
        actor=admin_user,
        evidence="gate-evaluation:9",
    )

    roles = dict(Deployment.objects.values_list("model_version__version", "role"))
    assert roles == {"1": "retired", "2": "standby", "3": "live"}
    shares = dict(Deployment.objects.values_list("model_version__version", "traffic_share"))
    assert shares == {"1": 0.0, "2": 0.0, "3": 1.0}
    events = list(AuditEvent.objects.order_by("id"))
    assert [(e.subject_id, e.before["role"], e.after["role"]) for e in events] == [
        (str(Deployment.objects.get(model_version=old_standby).pk), "standby", "retired"),
        (str(Deployment.objects.get(model_version=live).pk), "live", "standby"),
        (str(Deployment.objects.get(model_version=canary).pk), "canary", "live"),
    ]
    assert {e.action for e in events} == {"deployment.live_switch"}
    assert {e.evidence for e in events} == {"gate-evaluation:9"}


def test_rolling_back_the_live_version_restores_the_standby_live(queue, admin_user):
    standby, live = version_make(queue, "1"), version_make(queue, "2")
    deployment_make(standby, "standby")
    deployment_make(live, "live")

    rollout_rollback(queue=queue, model_version=live, actor=admin_user, reason="error rate 3%")

    roles = dict(Deployment.objects.values_list("model_version__version", "role"))
    assert roles == {"1": "live", "2": "shadow"}
    assert Deployment.objects.get(model_version=standby).traffic_share == 1.0
    events = list(AuditEvent.objects.order_by("id"))
    assert [(e.before["role"], e.after["role"]) for e in events] == [
        ("live", "shadow"),
        ("standby", "live"),
    ]
    assert all(e.after["reason"] == "error rate 3%" for e in events)


def test_rolling_back_a_live_version_without_standby_leaves_the_queue_to_inspectors(
    queue, admin_user
):
    live = version_make(queue, "1")
    deployment_make(live, "live")
    rollout_rollback(queue=queue, model_version=live, actor=admin_user, reason="drift")
    assert not Deployment.objects.filter(role__in=["live", "canary"]).exists()


def test_the_database_holds_one_standby_per_queue(queue):
    deployment_make(version_make(queue, "1"), "standby")
    with pytest.raises(IntegrityError), transaction.atomic():
        deployment_make(version_make(queue, "2"), "standby")


def test_a_second_canary_is_refused_naming_the_first(queue, admin_user):
    deployment_make(version_make(queue, "1"), "canary")
    second = version_make(queue, "2")
    deployment_make(second, "shadow")
    with pytest.raises(TransitionRefused, match="digits already has a canary, digits-mlp:1"):
        rollout_move(
            model_version=second, move=transitions.CANARY_START, actor=admin_user, share=0.05
        )
    assert Deployment.objects.get(model_version=second).role == "shadow"


def test_shadow_start_and_retire_may_be_repeated_without_a_second_audit_event(queue, admin_user):
    version = version_make(queue, "1")
    deployment = deployment_shadow_start(model_version=version, actor=admin_user)
    assert deployment_shadow_start(model_version=version, actor=admin_user).pk == deployment.pk
    deployment_retire(deployment=deployment, actor=admin_user)
    deployment_retire(deployment=deployment, actor=admin_user)
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "deployment.shadow_start",
        "deployment.retire",
    ]


def test_a_retired_version_can_go_back_to_shadow(queue, admin_user):
    version = version_make(queue, "1")
    deployment_make(version, "retired")
    assert deployment_shadow_start(model_version=version, actor=admin_user).role == "shadow"


def test_a_standby_is_not_put_back_in_shadow(queue, admin_user):
    version = version_make(queue, "1")
    deployment_make(version, "standby")
    with pytest.raises(TransitionRefused, match="is the standby on digits"):
        deployment_shadow_start(model_version=version, actor=admin_user)


def test_a_rollback_needs_a_reason_and_the_admin_role(queue, admin_user, ml_lead):
    version = version_make(queue, "1")
    deployment_make(version, "canary")
    with pytest.raises(ValueError, match="needs a reason"):
        rollout_rollback(queue=queue, model_version=version, actor=admin_user, reason="  ")
    with pytest.raises(PermissionDenied, match="admin role"):
        rollout_rollback(queue=queue, model_version=version, actor=ml_lead, reason="bad")
    assert Deployment.objects.get().role == "canary"
    assert not AuditEvent.objects.exists()


def test_the_system_may_roll_back_with_its_evidence(queue):
    version = version_make(queue, "1")
    deployment_make(version, "canary")
    rollout_rollback(
        queue=queue, model_version=version, actor=None, reason="breach", evidence="monitor:4"
    )
    event = AuditEvent.objects.get()
    assert (event.actor_name, event.evidence, event.after["reason"]) == (
        "system",
        "monitor:4",
        "breach",
    )


def test_each_rollback_counts_in_the_metrics_once_committed_with_what_triggered_it(
    queue, admin_user, django_capture_on_commit_callbacks
):
    def count(trigger: str) -> float:
        labels = {"queue": "digits", "model": "digits-mlp:1", "trigger": trigger}
        return REGISTRY.get_sample_value("shadowlab_rollbacks_total", labels) or 0.0

    before = count("automatic"), count("manual")
    version = version_make(queue, "1")
    deployment_make(version, "canary")
    with django_capture_on_commit_callbacks(execute=True):
        rollout_rollback(queue=queue, model_version=version, actor=None, reason="breach")
    assert count("automatic") == before[0] + 1
    rollout_move(model_version=version, move=transitions.CANARY_START, actor=admin_user, share=0.05)
    with django_capture_on_commit_callbacks(execute=True):
        rollout_rollback(queue=queue, model_version=version, actor=admin_user, reason="by hand")
        with pytest.raises(TransitionRefused):
            rollout_rollback(queue=queue, model_version=version, actor=admin_user, reason="again")
    assert (count("automatic"), count("manual")) == (before[0] + 1, before[1] + 1)


def test_a_rollback_of_another_queues_version_is_refused(queue, other_queue, admin_user):
    version = version_make(queue, "1")
    deployment_make(version, "canary")
    with pytest.raises(ValueError, match="belongs to queue digits"):
        rollout_rollback(queue=other_queue, model_version=version, actor=admin_user, reason="x")


def test_the_kill_switch_is_set_by_admins_and_each_change_audited(queue, admin_user, ml_lead):
    with pytest.raises(PermissionDenied):
        kill_switch_set(queue=queue, on=True, actor=ml_lead)
    assert not RolloutControl.objects.filter(kill_switch=True).exists()

    kill_switch_set(queue=queue, on=True, actor=admin_user)
    kill_switch_set(queue=queue, on=True, actor=admin_user)
    control = kill_switch_set(queue=queue, on=False, actor=admin_user)

    assert control.kill_switch is False
    assert control.changed_by == admin_user
    events = list(AuditEvent.objects.order_by("id"))
    assert [(e.action, e.before, e.after, e.queue_id) for e in events] == [
        ("kill_switch.set", {"on": False}, {"on": True}, queue.pk),
        ("kill_switch.set", {"on": True}, {"on": False}, queue.pk),
    ]
