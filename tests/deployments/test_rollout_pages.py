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


def _ladder(page: str) -> str:
    start = page.index('<ol class="ladder"')
    return page[start : page.index("</ol>", start)]


def _decide_items(version, outcomes: dict[str, int], *, at, prefix: str = "d") -> None:
    from deployments.models import Decision
    from inspections.models import Item

    n = 0
    for outcome, count in outcomes.items():
        for _ in range(count):
            item = Item.objects.create(
                queue=version.queue, external_id=f"{prefix}{n}", features=[0.0] * 64, received_at=at
            )
            answered = outcome != "failed"
            Decision.objects.create(
                item=item,
                model_version=version,
                role="canary",
                outcome=outcome,
                label="3" if answered else "",
                confidence=0.9 if answered else None,
                latency_ms=2.0,
                reason="" if answered else "timeout",
                created_at=at,
            )
            n += 1


def test_the_rollout_page_shows_the_ladder_with_the_canary_step_and_its_decisions(
    client_for, ml_lead, queue
):
    from django.utils import timezone

    deployment_make(version_make(queue, "1"), "live")
    canary = version_make(queue, "2")
    deployment = deployment_make(canary, "canary", 0.25)
    step = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
    Deployment.objects.filter(pk=deployment.pk).update(share_changed_at=step)
    _decide_items(
        canary, {"decided": 7, "deferred": 2, "failed": 1}, at=step + timedelta(minutes=1)
    )
    # Decisions from before the step are not this step's.
    _decide_items(canary, {"decided": 3}, at=step - timedelta(minutes=1), prefix="before")

    page = client_for(ml_lead).get("/rollout/digits/").content.decode()

    ladder = _ladder(page)
    assert '<li class="step passed">5%</li>' in ladder
    assert '<li class="step current" aria-current="step">25%</li>' in ladder
    assert '<li class="step next">50%</li>' in ladder
    assert '<li class="step ahead">100% · live</li>' in ladder
    assert f"decides 25% of the items, since {step:%Y-%m-%d %H:%M} UTC" in page
    assert (
        "10 items reached digits-mlp:2 since this step: it decided 7, deferred 2 to inspectors,"
        " and failed on 1 (sent to inspectors)." in page
    )
    assert "Next step: 50%" in page
    assert "an admin other than the requester approves it" in page
    assert "Auto-advance is off in gate policy version 1" in page
    assert "/rollout/digits/gate/digits-mlp:2/" in page


def test_a_canary_that_decided_nothing_yet_says_so_and_auto_advance_says_when(
    client_for, ml_lead, queue
):
    from tests.deployments.rollout_factories import auto_advance_policy_make

    auto_advance_policy_make(queue, soak_minutes=90)
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.5)

    page = client_for(ml_lead).get("/rollout/digits/").content.decode()

    assert "No item has reached digits-mlp:2 since it took this step." in page
    assert "Next step: live" in page
    assert "It is the blue-green switch: digits-mlp:2 must first pass the health check" in page
    assert "Or it advances by itself: its soak time of 90 minutes is over" in page
    assert "(0 audit items so far)" in page
    assert "auto-advance is on" in page


def test_a_share_between_steps_is_shown_as_such_with_the_step_above_next(
    client_for, ml_lead, queue
):
    deployment_make(version_make(queue, "2"), "canary", 0.1)
    page = client_for(ml_lead).get("/rollout/digits/").content.decode()
    ladder = _ladder(page)
    assert "current" not in ladder
    assert '<li class="step passed">5%</li>' in ladder
    assert '<li class="step next">25%</li>' in ladder
    assert "decides 10% of the items, a share of its own between two steps" in page


def test_without_a_canary_the_ladder_is_shown_plain(client_for, ml_lead, queue):
    page = client_for(ml_lead).get("/rollout/digits/").content.decode()
    assert "current" not in _ladder(page) and "5%" in _ladder(page)
    assert "No canary. A shadow version's first step is 5%" in page


@pytest.fixture
def blue_green(queue):
    deployment_make(version_make(queue, "2"), "live")
    deployment_make(version_make(queue, "1"), "standby")


def test_admins_are_offered_to_switch_back_to_the_standby_or_retire_it(
    client_for, admin_user, ml_lead, blue_green
):
    page = client_for(admin_user).get("/rollout/digits/").content.decode()
    assert "Standby: " in page and "kept loaded so that switching back is instant" in page
    assert "Switch back to digits-mlp:1</button>" in page
    assert "Retire digits-mlp:1</button>" in page
    lead_page = client_for(ml_lead).get("/rollout/digits/").content.decode()
    assert "Switch back to" not in lead_page and "Retire digits-mlp:1" not in lead_page


def test_switching_back_puts_the_standby_live_again(client_for, admin_user, queue, blue_green):
    client = client_for(admin_user)
    response = client.post(
        "/rollout/digits/rollback", {"model": "digits-mlp:2", "reason": "v2 defers too much"}
    )
    assert response.status_code == 302
    roles_now = dict(Deployment.objects.values_list("model_version__version", "role"))
    assert roles_now == {"1": "live", "2": "shadow"}
    page = client.get("/rollout/digits/").content.decode()
    assert "digits-mlp:2 is back in shadow. digits-mlp:1 is live again." in page


def test_an_admin_retires_the_standby_from_the_page(client_for, admin_user, queue, blue_green):
    client = client_for(admin_user)
    response = client.post("/rollout/digits/retire", {"model": "digits-mlp:1", "reason": "done"})
    assert response.status_code == 302
    assert Deployment.objects.get(model_version__version="1").role == "retired"
    page = client.get("/rollout/digits/").content.decode()
    assert "digits-mlp:1 is retired" in page
    assert "No standby: a rollback of the live version sends its items to inspectors" in page
    refused = client.post("/rollout/digits/retire", {"model": "digits-mlp:2", "reason": "x"})
    assert refused.status_code == 302
    assert (
        "Not retired: digits-mlp:2 is live on digits"
        in client.get("/rollout/digits/").content.decode()
    )
    assert Deployment.objects.get(model_version__version="2").role == "live"


def test_a_live_switch_refused_by_the_health_check_shows_every_reason_on_the_page(
    client_for, admin_user, ml_lead, queue
):
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.5)
    request = PromotionRequest.objects.create(
        queue=queue,
        model_version=canary,
        target="live",
        share=1.0,
        evaluation=evaluation_make(canary),
        requested_by=ml_lead,
    )
    client = client_for(admin_user)
    screen = client.get(f"/rollout/promotions/{request.pk}/").content.decode()
    assert "This is the blue-green switch. Approving runs digits-mlp:2's health check" in screen
    response = client.post(f"/rollout/promotions/{request.pk}/decide", {"decision": "approve"})
    assert response.status_code == 409
    page = response.content.decode()
    assert "digits-mlp:2 failed its health check, so it does not go live" in page
    assert "it could not be loaded in this process" in page
    assert Deployment.objects.get(model_version=canary).role == "canary"
    assert AuditEvent.objects.filter(action="deployment.health_check").count() == 1
