"""Promotion requests and decisions: evidence checked twice, four eyes, every change audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import IntegrityError, transaction

from deployments import live
from deployments.health_check import LiveSwitchRefused
from deployments.models import AuditEvent, Deployment, Prediction, PromotionRequest
from deployments.promotions import (
    PromotionConflict,
    PromotionForbidden,
    PromotionInvalid,
    promotion_approve,
    promotion_reject,
    promotion_request_create,
)
from deployments.transitions import TransitionRefused
from shadowlab import roles
from tests.deployments.live_factories import live_version_register, predictions_record
from tests.deployments.rollout_factories import (
    deployment_make,
    evaluation_make,
    policy_make,
    version_make,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin2(db) -> User:
    user = User.objects.create_user("second-admin", password="x", is_staff=True)
    roles.groups_sync()
    user.groups.add(Group.objects.get(name=roles.ADMIN))
    return user


@pytest.fixture
def candidate(queue):
    version = version_make(queue, "2")
    deployment_make(version, "shadow")
    return version


def _request(candidate, actor, *, target="canary", share=0.05, **evaluation_options):
    return promotion_request_create(
        queue=candidate.queue,
        model_version=candidate,
        target=target,
        share=share,
        evaluation=evaluation_make(candidate, **evaluation_options),
        actor=actor,
        note="agreement above the inspectors for two weeks",
    )


def test_a_lead_requests_a_canary_on_a_passing_fresh_evaluation_and_it_is_audited(
    candidate, ml_lead
):
    request = _request(candidate, ml_lead)
    assert (request.status, request.target, request.share) == ("pending", "canary", 0.05)
    event = AuditEvent.objects.get()
    assert event.action == "promotion.request"
    assert event.actor == ml_lead
    assert event.evidence == f"gate-evaluation:{request.evaluation_id}"
    assert event.queue == candidate.queue
    assert event.before is None
    assert event.after["status"] == "pending"
    assert event.after["share"] == 0.05


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"verdict": "fail"}, "failed; only a passing evaluation promotes"),
        ({"verdict": "insufficient"}, "insufficient verdict never promotes"),
        ({"age": timedelta(hours=24, minutes=1)}, r"24\.0 hours old; .* at most 24 hours"),
    ],
    ids=["failing", "insufficient", "stale"],
)
def test_a_request_on_a_failing_insufficient_or_stale_evaluation_is_refused(
    candidate, ml_lead, options, message
):
    with pytest.raises(PromotionConflict, match=message):
        _request(candidate, ml_lead, **options)
    assert not PromotionRequest.objects.exists()
    assert not AuditEvent.objects.exists()


def test_the_policy_sets_how_old_an_evaluation_may_be(candidate, ml_lead):
    strict = policy_make(candidate.queue, max_age_hours=2)
    with pytest.raises(PromotionConflict, match="at most 2 hours old"):
        _request(candidate, ml_lead, policy=strict, age=timedelta(hours=3))
    assert _request(candidate, ml_lead, policy=strict, age=timedelta(hours=1)).pk


def test_an_evaluation_of_another_version_is_refused(queue, candidate, ml_lead):
    other = version_make(queue, "3")
    with pytest.raises(PromotionInvalid, match="is of digits-mlp:3, not of digits-mlp:2"):
        promotion_request_create(
            queue=queue,
            model_version=candidate,
            target="canary",
            share=0.05,
            evaluation=evaluation_make(other),
            actor=ml_lead,
        )
    assert not PromotionRequest.objects.exists()


@pytest.mark.parametrize(
    ("target", "share", "message"),
    [
        ("canary", 1.0, "strictly between 0 and 1"),
        ("canary", float("nan"), "strictly between 0 and 1"),
        ("live", 0.5, "leave share out or give 1"),
        ("standby", 0.5, "target must be 'canary' or 'live'"),
    ],
)
def test_a_bad_target_or_share_is_refused_as_bad_input(candidate, ml_lead, target, share, message):
    with pytest.raises(PromotionInvalid, match=message):
        _request(candidate, ml_lead, target=target, share=share)


def test_a_shadow_version_cannot_be_requested_live(candidate, ml_lead):
    with pytest.raises(TransitionRefused, match="a shadow version goes live through canary first"):
        _request(candidate, ml_lead, target="live", share=None)


def test_a_canary_can_be_requested_at_a_larger_share_or_live(queue, ml_lead):
    version = version_make(queue, "2")
    deployment_make(version, "canary", 0.1)
    with pytest.raises(TransitionRefused, match="a raise needs a larger share"):
        _request(version, ml_lead, share=0.1)
    raise_request = _request(version, ml_lead, share=0.25)
    raise_request.status = "rejected"
    raise_request.decided_by = User.objects.create_user("someone")
    raise_request.decided_at = raise_request.requested_at
    raise_request.save()
    assert _request(version, ml_lead, target="live", share=None).share == 1.0


def test_one_pending_request_per_version(candidate, ml_lead):
    first = _request(candidate, ml_lead)
    with pytest.raises(PromotionConflict, match=f"already has a pending request, {first.pk}"):
        _request(candidate, ml_lead, share=0.1)


def test_an_inspector_cannot_request_a_promotion(candidate, inspector):
    with pytest.raises(PromotionForbidden):
        _request(candidate, inspector)


def test_an_admin_approves_a_canary_and_the_rollout_changes_in_the_same_step(
    candidate, ml_lead, admin_user
):
    request = _request(candidate, ml_lead)
    approved = promotion_approve(request=request, actor=admin_user, comment="go")

    assert approved.status == "approved"
    assert (approved.decided_by, approved.comment) == (admin_user, "go")
    deployment = Deployment.objects.get(model_version=candidate)
    assert (deployment.role, deployment.traffic_share) == ("canary", 0.05)
    assert deployment.promotion == request
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == [
        "promotion.request",
        "deployment.canary_start",
        "promotion.approve",
    ]
    transition = events[1]
    assert (transition.before["role"], transition.after["role"]) == ("shadow", "canary")
    assert transition.after["promotion"] == request.pk
    assert transition.evidence == f"gate-evaluation:{request.evaluation_id}"
    assert events[2].before["status"] == "pending"
    assert events[2].after["status"] == "approved"


@pytest.fixture
def healthy_canary(queue, digits_onnx, digits_split, digit_rows, admin_user):
    """A canary at 50% that loads, answers in budget and reproduces what it recorded in shadow."""
    canary = live_version_register(queue, digits_onnx, digits_split.train_x, "2", admin_user)
    predictions_record(canary, digit_rows[:40], prefix="shadow")
    deployment_make(canary, "canary", 0.5)
    yield canary
    live.live_scorers_clear()


def test_approving_live_makes_the_old_live_version_the_standby(
    queue, ml_lead, admin_user, healthy_canary
):
    old = version_make(queue, "1")
    deployment_make(old, "live")
    request = _request(healthy_canary, ml_lead, target="live", share=None)

    promotion_approve(request=request, actor=admin_user, comment="")

    roles_now = dict(Deployment.objects.values_list("model_version__version", "role"))
    assert roles_now == {"1": "standby", "2": "live"}
    assert Deployment.objects.get(model_version=healthy_canary).promotion == request
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    after_request = actions[actions.index("promotion.request") + 1 :]
    assert after_request[:3] == [
        "deployment.health_check",
        "deployment.live_switch",
        "deployment.live_switch",
    ]
    check = AuditEvent.objects.get(action="deployment.health_check")
    assert check.after["passed"] is True
    assert check.evidence == f"gate-evaluation:{request.evaluation_id}"


def test_a_failed_health_check_refuses_the_live_switch_with_its_reasons_and_is_audited(
    queue, ml_lead, admin_user, healthy_canary
):
    deployment_make(version_make(queue, "1"), "live")
    prediction = Prediction.objects.filter(model_version=healthy_canary).order_by("id").first()
    wrong = next(label for label in healthy_canary.labels if label != prediction.label)
    Prediction.objects.filter(pk=prediction.pk).update(label=wrong)
    request = _request(healthy_canary, ml_lead, target="live", share=None)

    with pytest.raises(LiveSwitchRefused, match="1 of 40 recorded predictions were not reproduced"):
        promotion_approve(request=request, actor=admin_user, comment="")

    request.refresh_from_db()
    assert request.status == "pending"
    roles_now = dict(Deployment.objects.values_list("model_version__version", "role"))
    assert roles_now == {"1": "live", "2": "canary"}
    check = AuditEvent.objects.get(action="deployment.health_check")
    assert (check.actor, check.after["passed"]) == (admin_user, False)
    assert not AuditEvent.objects.filter(action__in=["deployment.live_switch", "promotion.approve"])


def test_a_request_without_target_or_share_proposes_the_next_step_of_the_policy(queue, ml_lead):
    policy = policy_make(queue)
    policy.canary_steps = [0.1, 0.3, 1.0]
    policy.save(update_fields=["canary_steps"])
    version = version_make(queue, "2")
    deployment = deployment_make(version, "shadow")
    steps = []
    for share in (0.0, 0.1, 0.3):
        Deployment.objects.filter(pk=deployment.pk).update(
            role="shadow" if share == 0 else "canary", traffic_share=share
        )
        request = _request(version, ml_lead, target=None, share=None)
        steps.append((request.target, request.share))
        PromotionRequest.objects.filter(pk=request.pk).delete()
    assert steps == [("canary", 0.1), ("canary", 0.3), ("live", 1.0)]


def test_a_canary_target_without_a_share_takes_the_next_step_and_not_the_live_switch(
    queue, ml_lead
):
    version = version_make(queue, "2")
    deployment_make(version, "canary", 0.05)
    assert _request(version, ml_lead, share=None).share == 0.25
    PromotionRequest.objects.all().delete()
    Deployment.objects.filter(model_version=version).update(traffic_share=0.5)
    with pytest.raises(TransitionRefused, match="is the live switch: request target live"):
        _request(version, ml_lead, share=None)


def test_a_share_between_steps_is_allowed_and_its_next_step_is_the_one_above(queue, ml_lead):
    version = version_make(queue, "2")
    deployment_make(version, "canary", 0.05)
    assert _request(version, ml_lead, share=0.1).share == 0.1
    PromotionRequest.objects.all().delete()
    Deployment.objects.filter(model_version=version).update(traffic_share=0.1)
    assert _request(version, ml_lead, share=None).share == 0.25


@pytest.mark.parametrize("share", [0.05, 0.2, 0.25])
def test_a_raise_out_of_the_steps_order_is_refused_and_names_the_next_step(queue, ml_lead, share):
    version = version_make(queue, "2")
    deployment_make(version, "canary", 0.25)
    with pytest.raises(TransitionRefused, match="a raise needs a larger share") as refused:
        _request(version, ml_lead, share=share)
    assert "its next step is 50% (steps 5% → 25% → 50% → 100%)" in str(refused.value)
    assert not PromotionRequest.objects.exists()


def test_a_live_or_retired_version_has_no_step_to_propose(queue, ml_lead):
    version = version_make(queue, "2")
    deployment_make(version, "live")
    with pytest.raises(PromotionInvalid, match="target is needed: digits-mlp:2 is live"):
        _request(version, ml_lead, target=None, share=None)


def test_the_requester_cannot_approve_or_reject_their_own_request(candidate, admin_user):
    request = _request(candidate, admin_user)
    with pytest.raises(PromotionForbidden, match="another admin must decide it"):
        promotion_approve(request=request, actor=admin_user, comment="")
    with pytest.raises(PromotionForbidden, match="four eyes"):
        promotion_reject(request=request, actor=admin_user, comment="no")
    request.refresh_from_db()
    assert request.status == "pending"
    assert Deployment.objects.get(model_version=candidate).role == "shadow"


def test_the_database_refuses_a_decision_by_the_requester(candidate, admin_user):
    request = _request(candidate, admin_user)
    with pytest.raises(IntegrityError), transaction.atomic():
        PromotionRequest.objects.filter(pk=request.pk).update(
            status="approved", decided_by=admin_user, decided_at=request.requested_at
        )


def test_a_lead_cannot_decide(candidate, admin_user, ml_lead):
    request = _request(candidate, admin_user)
    with pytest.raises(PromotionForbidden, match="needs the admin role"):
        promotion_approve(request=request, actor=ml_lead, comment="")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"created_at_hours": 25}, "hours old"),
        ({"verdict": "fail"}, "failed"),
        ({"verdict": "insufficient"}, "insufficient"),
    ],
    ids=["stale", "failing", "insufficient"],
)
def test_approval_checks_the_evaluation_again_and_changes_nothing_when_it_no_longer_holds(
    candidate, ml_lead, admin_user, change, message
):
    from django.utils import timezone

    request = _request(candidate, ml_lead)
    # Evaluations are immutable; this only stands in for time passing or a bad fixture.
    evaluation = request.evaluation
    if "created_at_hours" in change:
        evaluation.created_at = timezone.now() - timedelta(hours=change["created_at_hours"])
    else:
        evaluation.verdict = change["verdict"]
    evaluation.save()
    events_before = AuditEvent.objects.count()

    with pytest.raises(PromotionConflict, match=message):
        promotion_approve(request=request, actor=admin_user, comment="")

    request.refresh_from_db()
    assert request.status == "pending"
    assert Deployment.objects.get(model_version=candidate).role == "shadow"
    assert AuditEvent.objects.count() == events_before


def test_approval_checks_the_move_again(queue, candidate, ml_lead, admin_user):
    request = _request(candidate, ml_lead)
    deployment_make(version_make(queue, "9"), "canary")
    with pytest.raises(TransitionRefused, match="already has a canary, digits-mlp:9"):
        promotion_approve(request=request, actor=admin_user, comment="")
    request.refresh_from_db()
    assert request.status == "pending"


def test_a_decided_request_cannot_be_decided_again(candidate, ml_lead, admin_user, admin2):
    request = _request(candidate, ml_lead)
    promotion_reject(request=request, actor=admin_user, comment="not yet")
    with pytest.raises(PromotionConflict, match="is already rejected"):
        promotion_approve(request=request, actor=admin2, comment="")


def test_a_rejection_needs_a_comment_and_is_audited(candidate, ml_lead, admin_user):
    request = _request(candidate, ml_lead)
    with pytest.raises(PromotionInvalid, match="comment is required"):
        promotion_reject(request=request, actor=admin_user, comment="   ")
    promotion_reject(request=request, actor=admin_user, comment="per-label recall too close")
    request.refresh_from_db()
    assert (request.status, request.comment) == ("rejected", "per-label recall too close")
    event = AuditEvent.objects.filter(action="promotion.reject").get()
    assert (event.actor, event.after["comment"]) == (admin_user, "per-label recall too close")
    assert Deployment.objects.get(model_version=candidate).role == "shadow"


def test_an_evaluation_made_on_an_older_policy_version_is_refused(queue, ml_lead):
    candidate = version_make(queue, "2")
    deployment_make(candidate, "shadow")
    evaluation = evaluation_make(candidate)
    # An admin raises a floor after the evaluation: its evidence no longer answers the policy.
    policy_make(queue)
    with pytest.raises(PromotionConflict, match="policy changed since"):
        promotion_request_create(
            queue=queue,
            model_version=candidate,
            target="canary",
            share=0.05,
            evaluation=evaluation,
            actor=ml_lead,
        )
    assert not PromotionRequest.objects.exists()
