"""The gate's JSON API: the policy document round trip, evaluating, reading evaluations."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client

from analytics import services
from analytics.models import GateEvaluation, GatePolicy
from deployments.models import AuditEvent
from tests.analytics.gate_data import gate_data_build, gate_data_populate

pytestmark = pytest.mark.django_db

POLICY = "/api/v1/queues/parts-gate/gate-policy"
GATE = "/api/v1/queues/parts-gate/gate"


@pytest.fixture
def data():
    built = gate_data_build()
    today = services.utc_today()
    gate_data_populate(built, seed=5, n=60, days=[today - timedelta(days=1), today])
    return built


def _put(client: Client, body: object):
    return client.put(POLICY, json.dumps(body), content_type="application/json")


def test_the_policy_document_goes_back_unchanged_and_edits_make_versions(
    data, client_for, ml_lead, admin_user
):
    document = client_for(ml_lead).get(POLICY).json()
    assert document["version"] == 1
    admin = client_for(admin_user)

    unchanged = _put(admin, document)
    assert unchanged.status_code == 200
    assert unchanged.json() == document

    edited = _put(admin, {**document, "agreement_floor": 0.88, "psi_major": None})
    assert edited.status_code == 200
    body = edited.json()
    assert (body["version"], body["agreement_floor"], body["psi_major"]) == (2, 0.88, None)
    assert body["created_by"] == admin_user.username
    assert admin.get(POLICY).json() == body
    assert AuditEvent.objects.filter(action="gate_policy.update").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"noninferiority_margin": 0.7}, "noninferiority_margin"),
        ({"window_days": "28"}, "window_days"),
        ({"agreement_floor": 0.9, "surprise": 1}, "surprise"),
        ({"confidence": None}, "confidence"),
        ([0.9], "body"),
    ],
)
def test_an_invalid_policy_is_a_400_naming_the_field(data, client_for, admin_user, body, field):
    response = _put(client_for(admin_user), body)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert field in response.json()["detail"]
    assert GatePolicy.objects.count() <= 1


def test_a_body_that_is_not_json_is_a_400(data, client_for, admin_user):
    response = client_for(admin_user).put(POLICY, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]


def test_an_edit_to_a_stale_version_is_a_409(data, client_for, admin_user):
    admin = client_for(admin_user)
    document = admin.get(POLICY).json()
    assert _put(admin, {**document, "window_days": 10}).status_code == 200
    response = _put(admin, {**document, "window_days": 12})
    assert response.status_code == 409
    assert "version 2" in response.json()["detail"]


def test_evaluating_returns_the_snapshot_and_reading_returns_it_again(data, client_for, ml_lead):
    lead = client_for(ml_lead)
    assert lead.get(f"{GATE}?model={data.fp32.key}").status_code == 404

    created = lead.post(f"{GATE}?model={data.fp32.key}")

    assert created.status_code == 201
    body = created.json()
    assert body["verdict"] in {"pass", "fail", "insufficient"}
    assert body["id"] == GateEvaluation.objects.get().pk
    for criterion in body["criteria"]:
        assert {"name", "verdict", "value", "lower", "upper", "threshold"} <= set(criterion)
    assert body["policy"]["version"] == 1
    assert lead.get(f"{GATE}?model={data.fp32.key}").json() == body
    assert lead.get(f"/api/v1/gate-evaluations/{body['id']}").json() == body


def test_no_evaluation_yet_reads_as_a_sentence(data, client_for, ml_lead):
    response = client_for(ml_lead).get(f"{GATE}?model={data.int8.key}")
    assert response.status_code == 404
    assert "has not been evaluated yet" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"{GATE}?model=", 400),
        (f"{GATE}?model=no-version", 400),
        (f"{GATE}", 400),
        (f"{GATE}?model=m:404", 404),
        ("/api/v1/queues/nowhere/gate?model=m:1", 404),
    ],
)
def test_a_bad_or_unknown_model_is_refused_and_nothing_evaluated(
    data, client_for, ml_lead, path, status
):
    response = client_for(ml_lead).post(path)
    assert response.status_code == status
    assert response.json()["detail"]
    assert not GateEvaluation.objects.exists()


def test_a_model_of_another_queue_is_not_found_here(data, client_for, ml_lead, other_queue):
    response = client_for(ml_lead).post(f"/api/v1/queues/{other_queue.slug}/gate?model=m:1")
    assert response.status_code == 404
    assert not GateEvaluation.objects.exists()


@pytest.mark.parametrize("evaluation_id", ["999999", "0", str(2**70), "abc"])
def test_an_unknown_evaluation_id_is_a_clear_refusal(data, client_for, ml_lead, evaluation_id):
    response = client_for(ml_lead).get(f"/api/v1/gate-evaluations/{evaluation_id}")
    assert response.status_code in (400, 404)
    assert response.json()["detail"]


def test_writes_without_a_csrf_token_are_refused(data, admin_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get(POLICY).status_code == 200  # reads need no token
    assert _put(client, {"window_days": 3}).status_code == 403
    assert client.post(f"{GATE}?model={data.fp32.key}").status_code == 403
    assert GatePolicy.objects.get().window_days == 28
    assert not GateEvaluation.objects.exists()
