"""Who may open which page: one table, every role against every view."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from analytics.registry import REPORT_KINDS
from deployments.models import ModelVersion
from inspections.models import Judgment
from inspections.services import item_assign_next, item_create

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Redirect:
    to: str


LOGIN = Redirect("/accounts/login/?next=")
ADMIN_LOGIN = Redirect("/admin/login/?next=")
QUEUES = Redirect("/inspect/")
OVERVIEW = Redirect("/overview/")
ROLLOUT = Redirect("/rollout/")
OUT = Redirect("/accounts/login/")  # signed out

ROLES = ("anonymous", "inspector", "ml_lead", "admin_user", "outsider")
# fmt: off
MATRIX = [
    # method  path                     anonymous    inspector    ml_lead   admin     outsider
    ("GET",  "/",                      LOGIN,       QUEUES,      OVERVIEW, ROLLOUT,  403),
    ("GET",  "/inspect/",              LOGIN,       200,         403,      403,      403),
    ("GET",  "/inspect/digits/",       LOGIN,       200,         403,      403,      403),
    # The item posted is not on the inspector's screen: refused, nothing recorded.
    ("POST", "/inspect/digits/judge",  LOGIN,       409,         403,      403,      403),
    ("GET",  "/inspect/digits/judge",  405,         405,         405,      405,      405),
    ("POST", "/inspect/digits/undo",   LOGIN,       409,         403,      403,      403),
    ("GET",  "/inspect/history/",      LOGIN,       200,         403,      403,      403),
    ("GET",  "/overview/",             LOGIN,       403,         200,      200,      403),
    ("GET",  "/models/upload/",        LOGIN,       403,         403,      200,      403),
    # The admin's empty form is let in and refused as invalid: 400, nothing registered.
    ("POST", "/models/upload/",        LOGIN,       403,         403,      400,      403),
    ("GET",  "/audit/",                LOGIN,       403,         200,      200,      403),
    ("GET",  "/audit/export.csv",      LOGIN,       403,         200,      200,      403),
    ("POST", "/audit/",                405,         405,         405,      405,      405),
    ("GET",  "/rollout/",              LOGIN,       403,         200,      200,      403),
    ("GET",  "/rollout/digits/",       LOGIN,       403,         200,      200,      403),
    ("GET",  "/rollout/nowhere/",      LOGIN,       403,         404,      404,      403),
    # Admins are let in and refused as invalid: the empty form names no state or model.
    ("POST", "/rollout/digits/kill-switch", LOGIN,  403,         403,      400,      403),
    ("POST", "/rollout/digits/rollback", LOGIN,     403,         403,      400,      403),
    ("POST", "/rollout/digits/retire", LOGIN,       403,         403,      400,      403),
    ("GET",  "/rollout/digits/retire", 405,         405,         405,      405,      405),
    ("GET",  "/rollout/digits/kill-switch", 405,    405,         405,      405,      405),
    ("GET",  "/rollout/promotions/9/", LOGIN,       403,         404,      404,      403),
    ("POST", "/rollout/promotions/9/decide", LOGIN, 403,         403,      404,      403),
    # "Use this threshold" on the confidence report. The admin's empty form names no
    # model version: let in and refused as invalid, the threshold unchanged.
    ("POST", "/overview/digits/deferral-threshold", LOGIN, 403,  403,      400,      403),
    ("GET",  "/overview/digits/deferral-threshold", 405,   405,  405,      405,      405),
    ("GET",  "/tokens/",               LOGIN,       403,         403,      200,      403),
    # The admin's empty form is let in and refused as invalid: 400, no token issued.
    ("POST", "/tokens/",               LOGIN,       403,         403,      400,      403),
    ("GET",  "/tokens/9/revoke",       LOGIN,       403,         403,      404,      403),
    ("POST", "/tokens/9/revoke",       LOGIN,       403,         403,      404,      403),
    ("GET",  "/admin/",                ADMIN_LOGIN, ADMIN_LOGIN, 200,      200,      ADMIN_LOGIN),
    ("GET",  "/healthz",               200,         200,         200,      200,      200),
    # Probes answer everyone (no secrets in them; /readyz/workers has its own test below, as
    # its answer depends on whether a worker runs); /metrics needs the scraper's bearer token
    # whoever is signed in, and does not exist while none is configured.
    ("GET",  "/readyz",                200,         200,         200,      200,      200),
    ("GET",  "/metrics",               404,         404,         404,      404,      404),
    # Django's sign-in pages: open to all, password change to the signed-in.
    ("GET",  "/accounts/login/",       200,         200,         200,      200,      200),
    ("POST", "/accounts/logout/",      OUT,         OUT,         OUT,      OUT,      OUT),
    ("GET",  "/accounts/logout/",      405,         405,         405,      405,      405),
    ("GET",  "/accounts/password_change/", LOGIN,   200,         200,      200,      200),
    ("GET",  "/accounts/password_change/done/", LOGIN, 200,      200,      200,      200),
    ("GET",  "/accounts/password_reset/", 200,      200,         200,      200,      200),
    ("GET",  "/accounts/password_reset/done/", 200, 200,         200,      200,      200),
    ("GET",  "/accounts/reset/MQ/not-a-token/", 200, 200,        200,      200,      200),
    ("GET",  "/accounts/reset/done/",  200,         200,         200,      200,      200),
    # Single sign-on is off unless configured: its pages do not exist (tests/test_oidc.py
    # runs them against a real provider).
    ("GET",  "/oidc/authenticate/",    404,         404,         404,      404,      404),
    ("GET",  "/oidc/callback/",        404,         404,         404,      404,      404),
    ("GET",  "/api/",                  404,         404,         404,      404,      404),
    ("GET",  "/api/docs",              LOGIN,       403,         200,      200,      403),
    ("GET",  "/api/openapi.json",      LOGIN,       403,         200,      200,      403),
]
# fmt: on

CASES = [
    pytest.param(role, method, path, expected, id=f"{role}-{method}-{path}")
    for method, path, *row in MATRIX
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(("role", "method", "path", "expected"), CASES)
def test_each_role_gets_the_expected_answer_from_each_view(
    request, client_for, queue, other_queue, role, method, path, expected
):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    item = item_create(queue=queue, external_id="waiting", features=[0.0] * 64)
    data = {"item_id": item.pk, "label": "3"} if path.endswith("/judge") else {}
    client = client_for(user)

    response = client.get(path) if method == "GET" else client.post(path, data)

    if isinstance(expected, Redirect):
        assert response.status_code == 302
        assert response["Location"].startswith(expected.to)
    else:
        assert response.status_code == expected
    if expected in (LOGIN, ADMIN_LOGIN, 403, 405, 409):
        # Refused means nothing changed.
        assert not Judgment.objects.exists()
        assert not ModelVersion.objects.exists()
    queue.refresh_from_db()
    assert queue.deferral_threshold == 0.0


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_worker_health_and_none_reads_metrics_without_the_token(
    request, client_for, settings, role
):
    from unittest import mock

    from shadowlab.celery import app as celery_app

    settings.SHADOWLAB_METRICS_TOKEN = "scraper-token"
    client = client_for(None if role == "anonymous" else request.getfixturevalue(role))
    with mock.patch.object(celery_app.control, "ping", return_value=[{"w@h": {"ok": "pong"}}]):
        assert client.get("/readyz/workers").status_code == 200
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scraper-token").status_code == 200


def test_an_inspector_judging_from_the_page_records_the_judgment(client_for, inspector, queue):
    item = item_create(queue=queue, external_id="waiting", features=[0.0] * 64)
    item_assign_next(queue=queue, inspector=inspector)
    client_for(inspector).post("/inspect/digits/judge", {"item_id": item.pk, "label": "3"})
    assert Judgment.objects.get().inspector == inspector


# JSON APIs of the promotion gate. Session users only: anonymous gets 401, not a redirect.
# "{evaluation}" stands for the id of an evaluation made before each request.
GATE_MODEL = "model=m:1"
# fmt: off
GATE_API_MATRIX = [
    # method  path                                       anonymous inspector ml_lead admin outsider
    ("GET",  "/api/v1/queues/digits/gate-policy",        401,      403,      200,    200,  403),
    ("PUT",  "/api/v1/queues/digits/gate-policy",        401,      403,      403,    200,  403),
    ("POST", f"/api/v1/queues/digits/gate?{GATE_MODEL}", 401,      403,      201,    201,  403),
    ("GET",  f"/api/v1/queues/digits/gate?{GATE_MODEL}", 401,      403,      200,    200,  403),
    ("GET",  "/api/v1/gate-evaluations/{evaluation}",    401,      403,      200,    200,  403),
]
# fmt: on

GATE_API_CASES = [
    pytest.param(role, method, path, expected, id=f"{role}-{method}-{path}")
    for method, path, *row in GATE_API_MATRIX
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(("role", "method", "path", "expected"), GATE_API_CASES)
def test_each_role_gets_the_expected_answer_from_each_gate_api(
    request, client_for, queue, role, method, path, expected
):
    from analytics.gate.evaluation import gate_evaluation_run
    from analytics.models import GateEvaluation, GatePolicy
    from deployments.models import AuditEvent

    version = ModelVersion.objects.create(
        queue=queue,
        name="m",
        version="1",
        onnx_file="models/m.onnx",
        sha256="0" * 64,
        size_bytes=1,
        labels=list(queue.labels),
        input_width=queue.input_width,
        input_name="x",
        probability_output="p",
    )
    evaluation = gate_evaluation_run(model_version=version, actor=None)
    user = None if role == "anonymous" else request.getfixturevalue(role)
    client = client_for(user)
    url = path.replace("{evaluation}", str(evaluation.pk))
    policies, events = GatePolicy.objects.count(), AuditEvent.objects.count()

    if method == "PUT":
        body = json.dumps({"window_days": 7})
        response = client.put(url, body, content_type="application/json")
    elif method == "POST":
        response = client.post(url)
    else:
        response = client.get(url)

    assert response.status_code == expected
    if expected >= 400:
        assert response.json()["detail"]  # a sentence, not an empty refusal
    if expected in (401, 403):
        # Refused means nothing changed.
        assert GatePolicy.objects.count() == policies
        assert GateEvaluation.objects.count() == 1
        assert AuditEvent.objects.count() == events


# The rollout JSON API (session login, CSRF on writes): inspectors and outsiders reach
# none of it; ml_leads request and read but cannot decide, flip the kill switch or roll back.
PROMOTE = {"model": "digits-mlp:2", "target": "canary", "share": 0.05, "evaluation": "{evaluation}"}
DECIDE = {"comment": "looked at the evidence"}
KILL = {"on": True}
ROLL_BACK = {"model": "digits-mlp:1", "reason": "test"}
RETIRE = {"model": "digits-mlp:2", "reason": "replaced"}
# fmt: off
ROLLOUT_API_MATRIX = [
    # method  path                                    body       anon insp lead admin outsider
    ("POST", "/api/v1/queues/digits/promotions",      PROMOTE,   401, 403, 201, 201, 403),
    ("GET",  "/api/v1/queues/digits/promotions",      None,      401, 403, 200, 200, 403),
    ("GET",  "/api/v1/promotions/{request}",          None,      401, 403, 200, 200, 403),
    ("POST", "/api/v1/promotions/{request}/approve",  DECIDE,    401, 403, 403, 200, 403),
    ("POST", "/api/v1/promotions/{request}/reject",   DECIDE,    401, 403, 403, 200, 403),
    ("POST", "/api/v1/queues/digits/kill-switch",     KILL,      401, 403, 403, 200, 403),
    ("GET",  "/api/v1/queues/digits/rollout",         None,      401, 403, 200, 200, 403),
    ("POST", "/api/v1/queues/digits/rollback",        ROLL_BACK, 401, 403, 403, 200, 403),
    ("POST", "/api/v1/queues/digits/retire",          RETIRE,    401, 403, 403, 200, 403),
]
# fmt: on

ROLLOUT_API_CASES = [
    pytest.param(role, method, path, body, expected, id=f"{role}-{method}-{path}")
    for method, path, body, *row in ROLLOUT_API_MATRIX
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(("role", "method", "path", "body", "expected"), ROLLOUT_API_CASES)
def test_each_role_gets_the_expected_answer_from_each_rollout_api_operation(
    request, client_for, queue, role, method, path, body, expected
):
    from django.contrib.auth.models import User

    from deployments.models import AuditEvent, PromotionRequest
    from tests.deployments.rollout_factories import (
        deployment_make,
        evaluation_make,
        version_make,
    )

    user = None if role == "anonymous" else request.getfixturevalue(role)
    live, candidate, awaiting = (version_make(queue, v) for v in ("1", "2", "3"))
    deployment_make(live, "live")
    deployment_make(candidate, "shadow")
    deployment_make(awaiting, "shadow")
    pending = PromotionRequest.objects.create(
        queue=queue,
        model_version=awaiting,
        target="canary",
        share=0.05,
        evaluation=evaluation_make(awaiting),
        requested_by=User.objects.create_user("another-lead"),
    )
    ids = {"evaluation": evaluation_make(candidate).pk, "request": pending.pk}
    client = client_for(user)

    url = path.format(**ids)
    if method == "GET":
        response = client.get(url)
    else:
        data = {k: ids["evaluation"] if v == "{evaluation}" else v for k, v in body.items()}
        response = client.post(url, json.dumps(data), content_type="application/json")

    assert response.status_code == expected, response.content
    if expected >= 400:
        assert response.json()["detail"]
        # Refused means nothing changed.
        assert not AuditEvent.objects.exists()
        assert PromotionRequest.objects.get().status == "pending"
    elif method == "POST":
        assert AuditEvent.objects.exists()


# Gate and model version pages. "m:1" is a model version of the digits queue, evaluated once.
GATE_PAGE = "/rollout/digits/gate/m:1/"
GATE_BACK = Redirect(GATE_PAGE)
POLICY_PAGE = "/rollout/digits/policy/"
# fmt: off
ROLLOUT_PAGES_MATRIX = [
    # method  path                        anonymous inspector ml_lead    admin      outsider
    ("GET",  GATE_PAGE,                   LOGIN,    403,      200,       200,       403),
    ("POST", GATE_PAGE,                   405,      405,      405,       405,       405),
    ("POST", f"{GATE_PAGE}evaluate",      LOGIN,    403,      GATE_BACK, GATE_BACK, 403),
    ("GET",  f"{GATE_PAGE}evaluate",      405,      405,      405,       405,       405),
    # An empty request form is let in and refused as invalid: 400, nothing requested.
    ("POST", f"{GATE_PAGE}request",       LOGIN,    403,      400,       400,       403),
    ("GET",  f"{GATE_PAGE}request",       405,      405,      405,       405,       405),
    ("GET",  POLICY_PAGE,                 LOGIN,    403,      200,       200,       403),
    # The admin's empty form is refused as invalid: 400, no new version.
    ("POST", POLICY_PAGE,                 LOGIN,    403,      403,       400,       403),
    ("GET",  "/models/m:1/",              LOGIN,    403,      200,       200,       403),
    ("POST", "/models/m:1/",              405,      405,      405,       405,       405),
]
# fmt: on

ROLLOUT_PAGES_CASES = [
    pytest.param(role, method, path, expected, id=f"{role}-{method}-{path}")
    for method, path, *row in ROLLOUT_PAGES_MATRIX
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(("role", "method", "path", "expected"), ROLLOUT_PAGES_CASES)
def test_each_role_gets_the_expected_answer_from_each_gate_page(
    request, client_for, queue, role, method, path, expected
):
    from analytics.gate.evaluation import gate_evaluation_run
    from analytics.models import GateEvaluation, GatePolicy
    from deployments.models import AuditEvent, PromotionRequest

    version = ModelVersion.objects.create(
        queue=queue,
        name="m",
        version="1",
        onnx_file="models/m.onnx",
        sha256="0" * 64,
        size_bytes=1,
        labels=list(queue.labels),
        input_width=queue.input_width,
        input_name="x",
        probability_output="p",
    )
    gate_evaluation_run(model_version=version, actor=None)
    user = None if role == "anonymous" else request.getfixturevalue(role)
    client = client_for(user)
    policies, events = GatePolicy.objects.count(), AuditEvent.objects.count()

    response = client.get(path) if method == "GET" else client.post(path)

    if isinstance(expected, Redirect):
        assert response.status_code == 302
        assert response["Location"].startswith(expected.to)
    else:
        assert response.status_code == expected
    if expected == GATE_BACK:
        assert GateEvaluation.objects.count() == 2
    else:
        # Refused, invalid or only read: nothing changed.
        assert GatePolicy.objects.count() == policies
        assert GateEvaluation.objects.count() == 1
        assert AuditEvent.objects.count() == events
        assert not PromotionRequest.objects.exists()


# The API tokens page: admins only. "{token}" is an active token of the digits queue.
TOKENS_BACK = Redirect("/tokens/?queue=digits")
ISSUE = {"queue": "{queue}", "name": "scanner", "expiry": "days", "days": "30"}
# fmt: off
TOKEN_PAGES_MATRIX = [
    # method  path                       body   anonymous inspector ml_lead admin        outsider
    ("GET",  "/tokens/",                 None,  LOGIN,    403,      403,    200,         403),
    ("POST", "/tokens/",                 ISSUE, LOGIN,    403,      403,    201,         403),
    ("GET",  "/tokens/{token}/revoke",   None,  LOGIN,    403,      403,    200,         403),
    ("POST", "/tokens/{token}/revoke",   None,  LOGIN,    403,      403,    TOKENS_BACK, 403),
]
# fmt: on

TOKEN_PAGES_CASES = [
    pytest.param(role, method, path, body, expected, id=f"{role}-{method}-{path}")
    for method, path, body, *row in TOKEN_PAGES_MATRIX
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(("role", "method", "path", "body", "expected"), TOKEN_PAGES_CASES)
def test_each_role_gets_the_expected_answer_from_each_token_page(
    request, client_for, queue, role, method, path, body, expected
):
    from deployments.models import AuditEvent
    from inspections.models import ApiToken
    from inspections.services import api_token_create

    token, raw = api_token_create(queue=queue, name="existing")
    client = client_for(None if role == "anonymous" else request.getfixturevalue(role))
    url = path.format(token=token.pk)
    data = {k: queue.pk if v == "{queue}" else v for k, v in (body or {}).items()}

    response = client.get(url) if method == "GET" else client.post(url, data)

    if isinstance(expected, Redirect):
        assert response.status_code == 302
        assert response["Location"].startswith(expected.to)
    else:
        assert response.status_code == expected
    token.refresh_from_db()
    if expected in (LOGIN, 403):
        # Refused means nothing changed: no token issued, none revoked, no secret shown.
        assert ApiToken.objects.count() == 1
        assert token.revoked_at is None
        assert not AuditEvent.objects.exclude(action="api_token.issue").exists()
        assert raw[10:] not in response.content.decode()


def test_the_rollout_entry_is_in_the_navigation_of_ml_leads_and_admins_only(
    client_for, queue, inspector, ml_lead, admin_user
):
    assert (
        'href="/rollout/">Rollout</a>'
        not in client_for(inspector).get("/inspect/history/").content.decode()
    )
    for user in (ml_lead, admin_user):
        html = client_for(user).get("/overview/").content.decode()
        assert 'href="/rollout/">Rollout</a>' in html


# A queue's deferral threshold over the API (session login, CSRF on writes): only admins
# set it; ml_leads read it with the rest of the rollout.
# fmt: off
DEFERRAL_API_MATRIX = [
    # method path                                      anonymous inspector ml_lead admin outsider
    ("PUT", "/api/v1/queues/digits/deferral-threshold", 401,     403,      403,    200,  403),
    ("GET", "/api/v1/queues/digits/deferral-threshold", 401,     403,      200,    200,  403),
]
# fmt: on

DEFERRAL_API_CASES = [
    pytest.param(role, method, path, expected, id=f"{role}-{method}-{path}")
    for method, path, *row in DEFERRAL_API_MATRIX
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(("role", "method", "path", "expected"), DEFERRAL_API_CASES)
def test_each_role_gets_the_expected_answer_from_the_deferral_threshold_api(
    request, client_for, queue, role, method, path, expected
):
    from deployments.models import AuditEvent

    user = None if role == "anonymous" else request.getfixturevalue(role)
    client = client_for(user)

    if method == "PUT":
        body = json.dumps({"threshold": 0.9})
        response = client.put(path, body, content_type="application/json")
    else:
        response = client.get(path)

    assert response.status_code == expected, response.content
    queue.refresh_from_db()
    if expected >= 400:
        assert response.json()["detail"]
    if method == "PUT" and expected == 200:
        assert queue.deferral_threshold == 0.9
        assert AuditEvent.objects.get().action == "deferral_threshold.set"
    else:
        # Refused, or only read: nothing changed.
        assert queue.deferral_threshold == 0.0
        assert not AuditEvent.objects.exists()


# The intake API takes a queue's bearer token, never a session: signed-in people (inspectors
# included) get 401 like anonymous callers; a token of another queue gets 403; a revoked or
# expired token 401.
INTAKE_ROLES = (*ROLES, "digits_token", "parts_token", "revoked_token", "expired_token")
ITEM = {"external_id": "new", "features": [0.0] * 64}
BATCH = {"items": [ITEM]}
V1 = "/api/v1"
# fmt: off
INTAKE_API_MATRIX = [
    # method  path                              body   anon insp lead adm  outs digi part revo expi
    ("POST", f"{V1}/queues/digits/items",       ITEM,  401, 401, 401, 401, 401, 201, 403, 401, 401),
    ("GET",  f"{V1}/items/{{item}}",            None,  401, 401, 401, 401, 401, 200, 403, 401, 401),
    ("POST", f"{V1}/queues/digits/items:batch", BATCH, 401, 401, 401, 401, 401, 200, 403, 401, 401),
    ("GET",  f"{V1}/queues/digits/items:batch", None,  405, 405, 405, 405, 405, 405, 405, 405, 405),
    ("POST", f"{V1}/queues/nowhere/items:batch", BATCH, 401, 401, 401, 401, 401, 404, 404, 401,
     401),
]
# fmt: on

INTAKE_API_CASES = [
    pytest.param(role, method, path, body, expected, id=f"{role}-{method}-{path}")
    for method, path, body, *row in INTAKE_API_MATRIX
    for role, expected in zip(INTAKE_ROLES, row, strict=True)
]


@pytest.mark.parametrize(("role", "method", "path", "body", "expected"), INTAKE_API_CASES)
def test_each_caller_gets_the_expected_answer_from_each_intake_api_operation(
    request, client_for, queue, other_queue, role, method, path, body, expected
):
    from django.test import Client

    from inspections.models import Item
    from tests.callers import token_secret

    waiting = item_create(queue=queue, external_id="waiting", features=[0.0] * 64)
    if role.endswith("_token"):
        admin = request.getfixturevalue("admin_user")
        token = token_secret(role, queue=queue, other_queue=other_queue, admin=admin)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    else:
        client = client_for(None if role == "anonymous" else request.getfixturevalue(role))
    url = path.format(item=waiting.pk)

    if method == "GET":
        response = client.get(url)
    else:
        response = client.post(url, json.dumps(body), content_type="application/json")

    assert response.status_code == expected, response.content
    if expected in (401, 403, 404):
        assert response.json()["detail"]  # a sentence, not an empty refusal
    if expected == 401 and role in ("revoked_token", "expired_token"):
        assert response.json()["detail"].startswith(f"token {role.split('_')[0]}")
    if expected >= 400:
        # Refused means nothing changed.
        assert list(Item.objects.values_list("external_id", flat=True)) == ["waiting"]


# Analytics pages, their CSV export, adjudication and the reports' JSON API, for a version
# with one disagreement: "{item}" is that item. ml_leads and admins only.
MODEL = "?model=digits-mlp:1"
ADJ = Redirect("/overview/digits/adjudicate/")
NEXT = Redirect("/overview/digits/adjudicate/next/")
ADJUDICATION = {"label": "5"}
# fmt: off
ANALYTICS_MATRIX = [
    # method path                                      body  anon   insp lead  admin outsider
    *[
        ("GET", f"/overview/digits/{kind}/{MODEL}",    None, LOGIN, 403, 200,  200,  403)
        for kind in REPORT_KINDS
    ],
    ("GET",  "/overview/digits/nokind/",               None, LOGIN, 403, 404,  404,  403),
    ("GET",  f"/overview/digits/export.csv{MODEL}",    None, LOGIN, 403, 200,  200,  403),
    ("GET",  f"/overview/digits/adjudicate/next/{MODEL}", None, LOGIN, 403, ADJ, ADJ, 403),
    ("GET",  f"/overview/digits/adjudicate/{{item}}/{MODEL}", None, LOGIN, 403, 200, 200, 403),
    ("POST", f"/overview/digits/adjudicate/{{item}}/{MODEL}", ADJUDICATION, LOGIN, 403, NEXT, NEXT,
     403),
    *[
        ("GET", f"/api/v1/queues/digits/reports/{kind}{MODEL}", None, 401, 403, 200, 200, 403)
        for kind in REPORT_KINDS
    ],
]
# fmt: on

ANALYTICS_CASES = [
    pytest.param(role, method, path, body, expected, id=f"{role}-{method}-{path}")
    for method, path, body, *row in ANALYTICS_MATRIX
    for role, expected in zip(ROLES, row, strict=True)
]


def disagreement_make(queue) -> Judgment:
    """Return an inspector's judgment "3" on an item the shadow digits-mlp:1 scored "5"."""
    from django.contrib.auth.models import Group, User

    from deployments.models import Prediction
    from inspections.services import item_assign_next, judgment_record
    from shadowlab import roles
    from tests.deployments.rollout_factories import deployment_make, version_make

    version = version_make(queue, "1")
    deployment_make(version, "shadow")
    item = item_create(queue=queue, external_id="disputed", features=[0.0] * 64)
    Prediction.objects.create(
        item=item,
        model_version=version,
        status=Prediction.Status.OK,
        label="5",
        confidence=0.8,
        probabilities=[0.02] * 9 + [0.82],
        latency_ms=1.0,
        backend="fp32",
    )
    judge = User.objects.create_user("judge")
    roles.groups_sync()
    judge.groups.add(Group.objects.get(name=roles.INSPECTOR))
    assert item_assign_next(queue=queue, inspector=judge) == item
    return judgment_record(item=item, inspector=judge, label="3", seconds_spent=2.0)


@pytest.mark.parametrize(("role", "method", "path", "body", "expected"), ANALYTICS_CASES)
def test_each_role_gets_the_expected_answer_from_each_analytics_page_and_report_api(
    request, client_for, queue, role, method, path, body, expected
):
    from analytics.models import Adjudication
    from deployments.models import AuditEvent

    judgment = disagreement_make(queue)
    client = client_for(None if role == "anonymous" else request.getfixturevalue(role))
    url = path.format(item=judgment.item_id)

    response = client.get(url) if method == "GET" else client.post(url, body)

    if isinstance(expected, Redirect):
        assert response.status_code == 302
        assert response["Location"].startswith(expected.to)
    else:
        assert response.status_code == expected
    if path.startswith("/api/") and expected >= 400:
        assert response.json()["detail"]
    if expected in (LOGIN, 401, 403):
        # Refused means nothing changed, and nothing of the model was sent.
        assert not Adjudication.objects.exists()
        assert not AuditEvent.objects.exists()
        assert b"0.82" not in response.content
    if method == "POST" and expected == NEXT:
        assert Adjudication.objects.get().label == "5"
