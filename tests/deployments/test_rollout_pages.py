"""The rollout pages: every queue, one queue, and the admin's decision screen."""

from __future__ import annotations

from datetime import timedelta

import pytest

from deployments.models import AuditEvent, Deployment, PromotionRequest, RolloutControl
from shadowlab import roles
from tests.conftest import _user
from tests.deployments.rollout_factories import deployment_make, evaluation_make, version_make

pytestmark = pytest.mark.django_db

SNAPSHOT = {
    "verdict": "pass",
    "bounds_used": "anytime_valid",
    "policy": {"version": 1},
    "window": {"since": "2026-11-05", "until": "2026-12-02", "days": 28},
    "evaluated_by": "lead",
    "evidence": {"judged": 2400, "double_inspected": 260, "predictions": 2400, "errors": 0},
    "criteria": [
        {
            "name": "agreement_floor",
            "verdict": "pass",
            "value": 0.951,
            "lower": 0.931,
            "upper": 0.966,
            "threshold": 0.9,
            "method": "beta-binomial mixture confidence sequence",
            "detail": "the model agrees with the inspectors on 2283 of 2400 judged items",
        },
        {
            "name": "int8_parity",
            "verdict": "off",
            "value": None,
            "lower": None,
            "upper": None,
            "threshold": None,
            "method": "",
            "detail": "switched off or not applicable",
        },
    ],
}


@pytest.fixture
def pending(queue, ml_lead):
    live, candidate = version_make(queue, "1"), version_make(queue, "2")
    deployment_make(live, "live")
    deployment_make(candidate, "shadow")
    evaluation = evaluation_make(candidate, by=ml_lead)
    evaluation.snapshot = SNAPSHOT
    evaluation.save(update_fields=["snapshot"])
    return PromotionRequest.objects.create(
        queue=queue,
        model_version=candidate,
        target="canary",
        share=0.05,
        evaluation=evaluation,
        requested_by=ml_lead,
        note="agreement clears the floor",
    )


def test_the_admin_lands_on_the_rollout_with_pending_requests_first(
    client_for, admin_user, pending
):
    response = client_for(admin_user).get("/", follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == "/rollout/"
    assert "Awaiting a decision (1)" in page
    assert page.index("Awaiting a decision") < page.index("Queues")
    assert "digits-mlp:2" in page and "Review and decide" in page


def test_the_rollout_page_shows_every_role_and_the_kill_switch(client_for, ml_lead, pending):
    page = client_for(ml_lead).get("/rollout/digits/").content.decode()
    assert "digits-mlp:1" in page and "all items" in page
    assert "No canary." in page
    assert "Kill switch: " in page and "off" in page
    # ml_leads see the state but neither the switch nor the rollback.
    assert "Turn the kill switch on" not in page
    assert "Roll back" not in page
    assert "No standby" in page


def test_an_admin_turns_the_kill_switch_on_from_the_page_and_it_is_audited(
    client_for, admin_user, queue
):
    response = client_for(admin_user).post("/rollout/digits/kill-switch", {"on": "true"})
    assert response.status_code == 302
    assert RolloutControl.objects.get(queue=queue).kill_switch
    event = AuditEvent.objects.get(action="kill_switch.set")
    assert event.before == {"on": False} and event.after == {"on": True}
    page = client_for(admin_user).get("/rollout/digits/").content.decode()
    assert "Every item goes to inspectors" in page


def test_the_decision_screen_shows_the_evaluation_in_full(client_for, ml_lead, pending):
    page = client_for(ml_lead).get(f"/rollout/promotions/{pending.pk}/").content.decode()
    assert "Agreement with the inspectors" in page and "0.951" in page
    assert "2283 of 2400 judged items" in page
    assert "2400 judged items, 260 double-inspected" in page
    assert "agreement clears the floor" in page
    # An ml_lead may look but not decide.
    assert 'value="approve"' not in page


def test_the_requester_sees_no_approve_button_and_is_refused_when_posting(
    client_for, pending, queue
):
    admin_requester = _user("second-admin", roles.ADMIN, staff=True)
    pending.requested_by = admin_requester
    pending.save(update_fields=["requested_by"])
    client = client_for(admin_requester)
    page = client.get(f"/rollout/promotions/{pending.pk}/").content.decode()
    assert "another admin must decide it" in page
    assert 'value="approve"' not in page
    response = client.post(f"/rollout/promotions/{pending.pk}/decide", {"decision": "approve"})
    assert response.status_code == 403
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_another_admin_approves_and_the_canary_starts(client_for, admin_user, pending, queue):
    response = client_for(admin_user).post(
        f"/rollout/promotions/{pending.pk}/decide",
        {"decision": "approve", "comment": "evidence is clear"},
    )
    assert response.status_code == 302
    canary = Deployment.objects.get(queue=queue, role="canary")
    assert canary.model_version == pending.model_version
    assert canary.traffic_share == pytest.approx(0.05)
    assert canary.promotion_id == pending.pk
    page = client_for(admin_user).get("/rollout/digits/").content.decode()
    assert "5% of items" in page and f"request {pending.pk}" in page


def test_a_stale_evaluation_is_refused_at_approval_with_the_reason(
    client_for, admin_user, pending, queue
):
    pending.evaluation.__class__.objects.filter(pk=pending.evaluation_id).update(
        created_at=pending.evaluation.created_at - timedelta(hours=30)
    )
    response = client_for(admin_user).post(
        f"/rollout/promotions/{pending.pk}/decide", {"decision": "approve"}
    )
    assert response.status_code == 409
    assert "Refused:" in response.content.decode()
    assert not Deployment.objects.filter(queue=queue, role="canary").exists()
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_rejecting_needs_a_comment(client_for, admin_user, pending):
    response = client_for(admin_user).post(
        f"/rollout/promotions/{pending.pk}/decide", {"decision": "reject", "comment": ""}
    )
    assert response.status_code == 409
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_an_admin_rolls_a_canary_back_from_the_page(client_for, admin_user, queue):
    version = version_make(queue, "4")
    deployment_make(version, "canary", 0.1)
    response = client_for(admin_user).post(
        "/rollout/digits/rollback", {"model": "digits-mlp:4", "reason": "audit agreement fell"}
    )
    assert response.status_code == 302
    assert Deployment.objects.get(model_version=version).role == "shadow"
    event = AuditEvent.objects.filter(action__startswith="deployment.").latest("id")
    assert event.after["role"] == "shadow"


def test_bad_decision_and_switch_values_are_refused_with_400(client_for, admin_user, pending):
    client = client_for(admin_user)
    decide = client.post(f"/rollout/promotions/{pending.pk}/decide", {"decision": "maybe"})
    assert decide.status_code == 400
    assert client.post("/rollout/digits/kill-switch", {"on": "yes"}).status_code == 400
    too_big = client.get(f"/rollout/promotions/{2**70}/")
    assert too_big.status_code == 404
