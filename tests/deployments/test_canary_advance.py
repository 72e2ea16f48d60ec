"""Auto-advance: a canary takes its next step by itself after its soak time, on its audit sample."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.models import GateEvaluation
from deployments import canary_advance, live, tasks
from deployments.models import (
    AuditEvent,
    Deployment,
    Prediction,
    PromotionRequest,
    RolloutControl,
)
from tests.deployments.live_factories import live_version_register, predictions_record
from tests.deployments.rollout_factories import (
    audit_sample_make,
    auto_advance_policy_make,
    deployment_make,
    evaluation_make,
    version_make,
)

pytestmark = pytest.mark.django_db


def _canary(version, share: float, *, minutes_ago: float) -> Deployment:
    deployment = deployment_make(version, "canary", share)
    deployment.share_changed_at = timezone.now() - timedelta(minutes=minutes_ago)
    deployment.save(update_fields=["share_changed_at"])
    return deployment


@pytest.fixture
def canary(queue):
    version = version_make(queue, "2")
    _canary(version, 0.05, minutes_ago=120)
    return version


def _step_start(version):
    return Deployment.objects.get(model_version=version).share_changed_at


def _run():
    (result,) = canary_advance.canary_advance_run()
    return result


def _share(version) -> float:
    return Deployment.objects.get(model_version=version).traffic_share


def test_a_passing_fresh_audit_evaluation_after_the_soak_time_advances_the_canary(queue, canary):
    auto_advance_policy_make(queue)
    audit_sample_make(canary, n=150, received_at=_step_start(canary) + timedelta(minutes=5))
    routing_before = RolloutControl.objects.get_or_create(queue=queue)[0].routing_version

    result = _run()

    assert result.outcome == "advanced", result.detail
    assert (result.share_before, result.share_after) == (0.05, 0.25)
    evaluation = GateEvaluation.objects.get(pk=result.evaluation)
    assert (evaluation.sample, evaluation.verdict) == ("audit", "pass")
    deployment = Deployment.objects.get(model_version=canary)
    assert (deployment.role, deployment.traffic_share) == ("canary", 0.25)
    assert deployment.share_changed_at > timezone.now() - timedelta(minutes=1)
    move = AuditEvent.objects.get(action="deployment.canary_share_raise")
    assert (move.actor, move.actor_name) == (None, "system")
    assert move.evidence == f"gate-evaluation:{evaluation.pk}"
    assert (move.before["traffic_share"], move.after["traffic_share"]) == (0.05, 0.25)
    assert move.after["reason"].startswith("auto-advance: 120 minutes at 5%")
    assert RolloutControl.objects.get(queue=queue).routing_version == routing_before + 1
    # The soak time starts again at the new step.
    assert _run().outcome == "waiting"


def test_nothing_moves_before_the_soak_time(queue):
    auto_advance_policy_make(queue, soak_minutes=60)
    version = version_make(queue, "2")
    _canary(version, 0.05, minutes_ago=10)
    audit_sample_make(version, n=150, received_at=_step_start(version))

    result = _run()

    assert result.outcome == "waiting"
    assert "soaking at 5% until" in result.detail
    assert _share(version) == 0.05
    assert not GateEvaluation.objects.exists()


def test_nothing_moves_when_the_policy_leaves_auto_advance_off(queue, canary):
    auto_advance_policy_make(queue, auto_advance=False)
    audit_sample_make(canary, n=150, received_at=_step_start(canary))

    result = _run()

    assert (result.outcome, result.detail) == (
        "off",
        "auto-advance is off in gate policy version 1",
    )
    assert _share(canary) == 0.05
    assert not GateEvaluation.objects.exists()


def test_a_failing_audit_evaluation_holds_the_canary_and_is_recorded(queue, canary):
    auto_advance_policy_make(queue)
    audit_sample_make(canary, n=150, received_at=_step_start(canary), wrong=0.3)

    result = _run()

    assert result.outcome == "held"
    assert "stays at 5%" in result.detail and "failed" in result.detail
    assert _share(canary) == 0.05
    evaluation = GateEvaluation.objects.get()
    assert (evaluation.sample, evaluation.verdict) == ("audit", "fail")
    event = AuditEvent.objects.get(action="gate.evaluate")
    assert (event.actor_name, event.after["sample"], event.after["verdict"]) == (
        "system",
        "audit",
        "fail",
    )
    assert not AuditEvent.objects.filter(action__startswith="deployment.")


def test_an_insufficient_audit_sample_holds_the_canary_and_is_not_evaluated_again_at_once(
    queue, canary
):
    auto_advance_policy_make(queue)
    audit_sample_make(canary, n=40, received_at=_step_start(canary))

    first, second = _run(), _run()

    assert first.outcome == second.outcome == "held"
    assert "insufficient" in first.detail
    assert "the next one is made after" in second.detail
    assert GateEvaluation.objects.get().verdict == "insufficient"
    assert _share(canary) == 0.05


def test_audit_items_from_before_the_step_do_not_count(queue, canary):
    auto_advance_policy_make(queue)
    audit_sample_make(canary, n=150, received_at=_step_start(canary) - timedelta(minutes=1))

    result = _run()

    assert result.outcome == "held"
    assert GateEvaluation.objects.get().snapshot["audit"]["audit_items"] == 0
    assert _share(canary) == 0.05


def test_an_evaluation_older_than_the_interval_is_made_again_and_may_then_pass(
    settings, queue, canary
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "CANARY_EVALUATION_INTERVAL_MINUTES": 0}
    auto_advance_policy_make(queue)
    audit_sample_make(canary, n=40, received_at=_step_start(canary))
    assert _run().outcome == "held"
    audit_sample_make(canary, n=120, received_at=_step_start(canary), prefix="later")

    result = _run()

    assert result.outcome == "advanced", result.detail
    assert list(GateEvaluation.objects.order_by("id").values_list("verdict", flat=True)) == [
        "insufficient",
        "pass",
    ]


def test_a_pending_request_or_the_kill_switch_leaves_the_move_to_people(
    queue, canary, ml_lead, admin_user
):
    from deployments.rollout import kill_switch_set

    auto_advance_policy_make(queue)
    audit_sample_make(canary, n=150, received_at=_step_start(canary))
    kill_switch_set(queue=queue, on=True, actor=admin_user)
    assert "the kill switch is on" in _run().detail
    kill_switch_set(queue=queue, on=False, actor=admin_user)
    request = PromotionRequest.objects.create(
        queue=queue,
        model_version=canary,
        target="canary",
        share=0.25,
        evaluation=evaluation_make(canary),
        requested_by=ml_lead,
    )

    result = _run()

    assert result.outcome == "waiting"
    assert f"promotion request {request.pk} is pending" in result.detail
    assert _share(canary) == 0.05


@pytest.fixture
def last_step(queue, digits_onnx, digits_split, digit_rows, admin_user):
    """A live v1 and a real v2 canary at its last canary step with a passing audit sample."""
    deployment_make(version_make(queue, "1"), "live")
    v2 = live_version_register(queue, digits_onnx, digits_split.train_x, "2", admin_user)
    predictions_record(v2, digit_rows[:40], prefix="shadow")
    _canary(v2, 0.5, minutes_ago=120)
    auto_advance_policy_make(queue)
    audit_sample_make(v2, n=150, received_at=_step_start(v2))
    live.live_scorers_clear()
    yield v2
    live.live_scorers_clear()


def test_the_last_step_passes_the_health_check_and_switches_live(queue, last_step):
    result = _run()

    assert result.outcome == "advanced", result.detail
    assert result.detail.startswith("advanced to live")
    roles_now = dict(Deployment.objects.values_list("model_version__version", "role"))
    assert roles_now == {"1": "standby", "2": "live"}
    check = AuditEvent.objects.get(action="deployment.health_check")
    assert (check.actor_name, check.after["passed"]) == ("system", True)
    assert check.evidence == f"gate-evaluation:{result.evaluation}"
    switches = AuditEvent.objects.filter(action="deployment.live_switch")
    assert {e.actor_name for e in switches} == {"system"} and switches.count() == 2


def test_a_failed_health_check_keeps_the_canary_at_its_last_step(queue, last_step):
    prediction = Prediction.objects.filter(model_version=last_step).order_by("id").first()
    wrong = next(label for label in last_step.labels if label != prediction.label)
    Prediction.objects.filter(pk=prediction.pk).update(label=wrong)

    result = _run()

    assert result.outcome == "refused"
    assert "failed its health check" in result.detail
    assert "1 of 40 recorded predictions were not reproduced" in result.detail
    roles_now = dict(Deployment.objects.values_list("model_version__version", "role"))
    assert roles_now == {"1": "live", "2": "canary"}
    assert AuditEvent.objects.get(action="deployment.health_check").after["passed"] is False


def test_the_beat_task_runs_the_service(queue, canary):
    auto_advance_policy_make(queue)
    audit_sample_make(canary, n=150, received_at=_step_start(canary))
    tasks.canaries_advance()
    assert _share(canary) == 0.25


def test_the_beat_schedule_advances_canaries_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["advance-canaries"]
    assert entry["task"] == "deployments.tasks.canaries_advance"
    assert entry["schedule"] == 60.0
