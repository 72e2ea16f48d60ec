"""The rollout JSON API: promotions, decisions, kill switch, rollout state and rollback."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client

from deployments.models import AuditEvent, Deployment, PromotionRequest
from tests.deployments.rollout_factories import deployment_make, evaluation_make, version_make

pytestmark = pytest.mark.django_db


def _post(client: Client, path: str, body: object):
    return client.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def candidate(queue):
    version = version_make(queue, "2")
    deployment_make(version, "shadow")
    return version


@pytest.fixture
def lead(client_for, ml_lead) -> Client:
    return client_for(ml_lead)


@pytest.fixture
def boss(client_for, admin_user) -> Client:
    return client_for(admin_user)


def _ask(client, candidate, **overrides):
    body = {
        "model": candidate.key,
        "target": "canary",
        "share": 0.05,
        "evaluation": evaluation_make(candidate).pk,
        **overrides,
    }
    return _post(client, "/api/v1/queues/digits/promotions", body)


def test_a_lead_requests_and_an_admin_approves_a_canary(lead, boss, candidate, ml_lead):
    response = _ask(lead, candidate, note="two weeks of evidence")
    assert response.status_code == 201
    request = response.json()
    assert request["status"] == "pending"
    assert (request["model"], request["target"], request["share"]) == (
        "digits-mlp:2",
        "canary",
        0.05,
    )
    assert request["requested_by"] == ml_lead.username
    assert request["note"] == "two weeks of evidence"

    response = _post(boss, f"/api/v1/promotions/{request['id']}/approve", {"comment": "go"})
    assert response.status_code == 200
    assert response.json()["status"] == "approved"
    assert response.json()["decided_by"] == "boss"
    assert Deployment.objects.get(model_version=candidate).role == "canary"

    state = lead.get("/api/v1/queues/digits/rollout").json()
    assert state["canary"]["model"] == "digits-mlp:2"
    assert state["canary"]["share"] == 0.05
    assert state["canary"]["promotion"] == request["id"]
    assert state["canary"]["evaluation"] == request["evaluation"]
    assert state["pending"] == []


def test_the_requester_approving_their_own_request_gets_403(boss, candidate):
    request = _ask(boss, candidate).json()
    response = _post(boss, f"/api/v1/promotions/{request['id']}/approve", {"comment": ""})
    assert response.status_code == 403
    assert "four eyes" in response.json()["detail"]
    assert PromotionRequest.objects.get().status == "pending"


def test_a_lead_cannot_approve_or_reject(lead, client_for, candidate, admin_user):
    request = _ask(client_for(admin_user), candidate).json()
    for verb in ("approve", "reject"):
        response = _post(lead, f"/api/v1/promotions/{request['id']}/{verb}", {"comment": "x"})
        assert response.status_code == 403
    assert PromotionRequest.objects.get().status == "pending"


@pytest.mark.parametrize(
    ("evaluation", "status", "words"),
    [
        ({"verdict": "fail"}, 409, "failed"),
        ({"verdict": "insufficient"}, 409, "insufficient"),
        ({"age": timedelta(hours=30)}, 409, "hours old"),
    ],
    ids=["failing", "insufficient", "stale"],
)
def test_a_request_on_evidence_that_does_not_hold_is_refused_with_the_reason(
    lead, candidate, evaluation, status, words
):
    response = _ask(lead, candidate, evaluation=evaluation_make(candidate, **evaluation).pk)
    assert response.status_code == status
    assert words in response.json()["detail"]
    assert not PromotionRequest.objects.exists()


def test_an_approval_on_an_evaluation_gone_stale_is_refused_with_409(lead, boss, candidate):
    request = _ask(lead, candidate).json()
    evaluation = PromotionRequest.objects.get().evaluation
    evaluation.created_at -= timedelta(hours=25)
    evaluation.save()
    response = _post(boss, f"/api/v1/promotions/{request['id']}/approve", {"comment": ""})
    assert response.status_code == 409
    assert "evaluate the gate again" in response.json()["detail"]
    assert Deployment.objects.get(model_version=candidate).role == "shadow"


@pytest.mark.parametrize(
    ("overrides", "status", "words"),
    [
        ({"model": "digits-mlp"}, 400, "name:version"),
        ({"model": "ghost:1"}, 404, "has no model version ghost:1"),
        ({"evaluation": 999999}, 404, "no gate evaluation 999999"),
        ({"target": "live", "share": None}, 409, "goes live through canary first"),
        ({"share": 2}, 400, "strictly between 0 and 1"),
        ({"share": "lots"}, 400, "share"),
        ({"evaluation": "seven"}, 400, "evaluation"),
    ],
)
def test_bad_promotion_requests_get_a_clear_status_and_reason(
    lead, candidate, overrides, status, words
):
    response = _ask(lead, candidate, **overrides)
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_an_evaluation_of_another_version_is_a_400(lead, queue, candidate):
    other = version_make(queue, "3")
    response = _ask(lead, candidate, evaluation=evaluation_make(other).pk)
    assert response.status_code == 400
    assert "is of digits-mlp:3" in response.json()["detail"]


def test_unknown_queues_and_requests_are_404(lead, boss):
    assert lead.get("/api/v1/queues/nope/rollout").status_code == 404
    assert lead.get("/api/v1/promotions/424242").status_code == 404
    assert _post(boss, "/api/v1/promotions/424242/approve", {}).status_code == 404


def test_a_rejection_needs_a_comment(lead, boss, candidate):
    request = _ask(lead, candidate).json()
    response = _post(boss, f"/api/v1/promotions/{request['id']}/reject", {})
    assert response.status_code == 400
    assert "comment is required" in response.json()["detail"]
    response = _post(boss, f"/api/v1/promotions/{request['id']}/reject", {"comment": "wait"})
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["comment"]) == ("rejected", "wait")
    assert lead.get(f"/api/v1/promotions/{request['id']}").json()["status"] == "rejected"


def test_the_list_is_paged_newest_first_and_filtered_by_status(lead, boss, queue):
    ids = []
    for n in range(3):
        version = version_make(queue, f"{n + 2}")
        deployment_make(version, "shadow")
        ids.append(_ask(lead, version).json()["id"])
    _post(boss, f"/api/v1/promotions/{ids[0]}/reject", {"comment": "no"})

    page = lead.get("/api/v1/queues/digits/promotions?page_size=2").json()
    assert (page["count"], page["page"], page["page_size"]) == (3, 1, 2)
    assert [r["id"] for r in page["results"]] == [ids[2], ids[1]]
    pending = lead.get("/api/v1/queues/digits/promotions?status=pending").json()
    assert {r["id"] for r in pending["results"]} == {ids[1], ids[2]}


@pytest.mark.parametrize(
    "query",
    ["status=maybe", "page=0", "page=x", "page_size=101", "page_size=0", "page=10001"],
)
def test_a_bad_list_parameter_is_a_400(lead, queue, query):
    response = lead.get(f"/api/v1/queues/digits/promotions?{query}")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_the_rollout_state_shows_every_role_the_kill_switch_and_pending_requests(
    lead, boss, queue, ml_lead
):
    live, canary, standby = (version_make(queue, v) for v in ("1", "2", "0"))
    shadows = [version_make(queue, v) for v in ("3", "4")]
    deployment_make(live, "live")
    deployment_make(canary, "canary", 0.2)
    deployment_make(standby, "standby")
    deployment_make(version_make(queue, "old"), "retired")
    for version in shadows:
        deployment_make(version, "shadow")
    evaluation = evaluation_make(canary)
    request = _ask(lead, canary, evaluation=evaluation.pk, target="live", share=None).json()
    _post(boss, "/api/v1/queues/digits/kill-switch", {"on": True})

    state = lead.get("/api/v1/queues/digits/rollout").json()

    assert state["queue"] == "digits"
    assert (state["live"]["model"], state["live"]["share"]) == ("digits-mlp:1", 1.0)
    assert state["live"]["moves"] == ["rollback"]
    assert (state["canary"]["model"], state["canary"]["share"]) == ("digits-mlp:2", 0.2)
    assert state["canary"]["moves"] == ["canary_share_raise", "live_switch", "rollback"]
    assert state["standby"]["model"] == "digits-mlp:0"
    assert [s["model"] for s in state["shadows"]] == ["digits-mlp:3", "digits-mlp:4"]
    assert state["kill_switch"]["on"] is True
    assert state["kill_switch"]["changed_by"] == "boss"
    assert state["pending"] == [request]
    pending = state["pending"][0]
    assert (pending["model"], pending["target"], pending["share"]) == ("digits-mlp:2", "live", 1.0)
    assert (pending["evaluation"], pending["requested_by"]) == (evaluation.pk, ml_lead.username)
    assert pending["id"] == PromotionRequest.objects.get().pk
    assert pending["requested_at"]


def test_an_empty_queue_has_an_empty_rollout(lead, queue):
    state = lead.get("/api/v1/queues/digits/rollout").json()
    assert state["live"] is None and state["canary"] is None and state["standby"] is None
    assert state["shadows"] == [] and state["pending"] == []
    assert state["kill_switch"] == {"on": False, "changed_by": None, "changed_at": None}


def test_the_kill_switch_is_flipped_by_admins_only_and_validated(lead, boss, queue):
    assert _post(lead, "/api/v1/queues/digits/kill-switch", {"on": True}).status_code == 403
    assert _post(boss, "/api/v1/queues/digits/kill-switch", {"on": "yes"}).status_code == 400
    assert _post(boss, "/api/v1/queues/digits/kill-switch", {}).status_code == 400
    response = _post(boss, "/api/v1/queues/digits/kill-switch", {"on": True})
    assert response.status_code == 200
    assert response.json()["kill_switch"]["on"] is True
    assert AuditEvent.objects.get().action == "kill_switch.set"


def test_an_admin_rolls_back_a_live_version_and_the_standby_returns(boss, lead, queue):
    live, standby = version_make(queue, "2"), version_make(queue, "1")
    deployment_make(live, "live")
    deployment_make(standby, "standby")
    assert (
        _post(
            lead, "/api/v1/queues/digits/rollback", {"model": live.key, "reason": "x"}
        ).status_code
        == 403
    )
    response = _post(
        boss, "/api/v1/queues/digits/rollback", {"model": live.key, "reason": "errors up"}
    )
    assert response.status_code == 200
    assert response.json()["live"]["model"] == "digits-mlp:1"
    assert [s["model"] for s in response.json()["shadows"]] == ["digits-mlp:2"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"model": "digits-mlp:2", "reason": " "}, 400, "needs a reason"),
        ({"model": "digits-mlp:2"}, 400, "reason"),
        ({"model": "ghost:1", "reason": "x"}, 404, "no model version"),
    ],
)
def test_a_bad_rollback_is_refused_with_the_reason(boss, queue, body, status, words):
    deployment_make(version_make(queue, "2"), "live")
    response = _post(boss, "/api/v1/queues/digits/rollback", body)
    assert response.status_code == status
    assert words in response.json()["detail"]


def test_rolling_back_a_shadow_version_is_a_409(boss, candidate):
    response = _post(
        boss, "/api/v1/queues/digits/rollback", {"model": candidate.key, "reason": "x"}
    )
    assert response.status_code == 409
    assert "nothing to roll back" in response.json()["detail"]


def test_state_changing_calls_need_the_csrf_token(admin_user, queue):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = _post(client, "/api/v1/queues/digits/kill-switch", {"on": True})
    assert response.status_code == 403
    assert not AuditEvent.objects.exists()
    assert client.get("/api/v1/queues/digits/rollout").status_code == 200


def test_anonymous_callers_get_401(client, queue):
    assert client.get("/api/v1/queues/digits/rollout").status_code == 401
    assert _post(client, "/api/v1/queues/digits/kill-switch", {"on": True}).status_code == 401


def test_requests_without_target_or_share_climb_the_policy_steps_in_order(lead, boss, candidate):
    climbed = []
    for _ in range(4):
        request = _ask(lead, candidate, target=None, share=None).json()
        climbed.append((request["target"], request["share"]))
        if request["target"] == "canary":
            response = _post(boss, f"/api/v1/promotions/{request['id']}/approve", {})
            assert response.status_code == 200
    assert climbed == [("canary", 0.05), ("canary", 0.25), ("canary", 0.5), ("live", 1.0)]
    assert Deployment.objects.get(model_version=candidate).traffic_share == 0.5


def test_a_raise_out_of_order_is_a_409_that_names_the_next_step(lead, queue):
    canary = version_make(queue, "2")
    deployment_make(canary, "canary", 0.5)
    response = _ask(lead, canary, share=0.25)
    assert response.status_code == 409
    assert (
        "a raise needs a larger share, got 25%: its next step is the live switch"
        in (response.json()["detail"])
    )
    assert not PromotionRequest.objects.exists()


def test_a_live_switch_whose_health_check_fails_is_a_409_with_every_reason(lead, boss, queue):
    canary = version_make(queue, "2")  # no model file, no reference rows, nothing recorded
    deployment_make(canary, "canary", 0.5)
    request = _ask(lead, canary, target="live", share=None).json()

    response = _post(boss, f"/api/v1/promotions/{request['id']}/approve", {})

    assert response.status_code == 409
    assert response.json()["detail"].startswith(
        "digits-mlp:2 failed its health check, so it does not go live: it could not be loaded"
    )
    assert Deployment.objects.get(model_version=canary).role == "canary"
    assert PromotionRequest.objects.get().status == "pending"
    assert AuditEvent.objects.filter(action="deployment.health_check").count() == 1


def test_an_admin_retires_the_standby_with_a_reason_and_it_is_audited(boss, queue, admin_user):
    deployment_make(version_make(queue, "2"), "live")
    standby = version_make(queue, "1")
    deployment_make(standby, "standby")

    response = _post(
        boss, "/api/v1/queues/digits/retire", {"model": "digits-mlp:1", "reason": "v2 holds up"}
    )

    assert response.status_code == 200
    assert response.json()["standby"] is None
    assert Deployment.objects.get(model_version=standby).role == "retired"
    event = AuditEvent.objects.get(action="deployment.retire")
    assert (event.actor, event.before["role"], event.after["role"]) == (
        admin_user,
        "standby",
        "retired",
    )
    assert event.after["reason"] == "v2 holds up"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"model": "digits-mlp:2", "reason": "done"}, 409, "must be rolled back, not retired"),
        ({"model": "digits-mlp:1", "reason": "  "}, 400, "retiring a model needs a reason"),
        ({"model": "digits-mlp:9", "reason": "done"}, 404, "has no model version digits-mlp:9"),
        ({"model": "nothing", "reason": "done"}, 400, "not a model key"),
        ({"model": "digits-mlp:1", "reason": "x" * 501}, 400, "reason"),
    ],
)
def test_a_retirement_that_cannot_be_made_changes_nothing(boss, queue, body, status, message):
    deployment_make(version_make(queue, "2"), "live")
    deployment_make(version_make(queue, "1"), "standby")

    response = _post(boss, "/api/v1/queues/digits/retire", body)

    assert response.status_code == status
    assert message in str(response.json())
    assert dict(Deployment.objects.values_list("model_version__version", "role")) == {
        "2": "live",
        "1": "standby",
    }
    assert not AuditEvent.objects.exists()
