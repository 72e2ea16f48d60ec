"""JSON API of the promotion gate: a queue's policy, evaluating a model version, evaluations.

Session users only (``django_auth``: CSRF on writes, 401 without a login); each handler
checks the permission it needs and answers 403 with a sentence otherwise.
"""

from __future__ import annotations

import json
from typing import cast

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from ninja import Router
from ninja.security import django_auth

from analytics.gate.evaluation import (
    gate_evaluation_document,
    gate_evaluation_get,
    gate_evaluation_latest,
    gate_evaluation_run,
)
from analytics.gate.policy import (
    GatePolicyConflict,
    GatePolicyInvalid,
    gate_policy_current,
    gate_policy_document,
    gate_policy_update,
)
from deployments.models import ModelVersion
from deployments.selectors import model_key_parse, queue_model_version_find
from inspections.models import Queue
from shadowlab import roles
from shadowlab.api import api, problem_response, queue_or_problem

router = Router(tags=["gate"])

VIEW_GATE_POLICY = "analytics.view_gatepolicy"
VIEW_GATE_EVALUATIONS = "analytics.view_gateevaluation"
# Ids are 64-bit in the database; a larger number names nothing (and SQLite would refuse it).
MAX_ID = 2**63 - 1


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _model_version(request: HttpRequest, queue: Queue) -> ModelVersion | HttpResponse:
    key = request.GET.get("model", "")
    try:
        model_key_parse(key)
    except ValueError:
        return problem_response(
            request, 400, "give the model version as ?model=<name>:<version>, e.g. digits-mlp:1"
        )
    version = queue_model_version_find(queue=queue, key=key)
    if version is None:
        return problem_response(
            request, 404, f"queue '{queue.slug}' has no model version {key[:200]}"
        )
    return version


@router.get("/queues/{slug}/gate-policy", auth=django_auth, summary="Read a queue's gate policy")
def gate_policy_read(request: HttpRequest, slug: str) -> HttpResponse:
    """Return the queue's current gate policy document."""
    if not _user(request).has_perm(VIEW_GATE_POLICY):
        return problem_response(
            request, 403, "reading a gate policy needs the ml_lead or admin role"
        )
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    return api.create_response(
        request, gate_policy_document(gate_policy_current(queue=queue)), status=200
    )


@router.put("/queues/{slug}/gate-policy", auth=django_auth, summary="Edit a queue's gate policy")
def gate_policy_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """Store the document sent as the queue's next policy version; return the current one."""
    if not roles.can_edit_gate_policy(_user(request)):
        return problem_response(request, 403, "editing a gate policy needs the admin role")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    try:
        values = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return problem_response(request, 400, "the body must be the policy document as JSON")
    try:
        policy = gate_policy_update(queue=queue, values=values, actor=_user(request))
    except GatePolicyInvalid as exc:
        return problem_response(request, 400, str(exc), field=exc.field)
    except GatePolicyConflict as exc:
        return problem_response(request, 409, str(exc))
    return api.create_response(request, gate_policy_document(policy), status=200)


@router.post("/queues/{slug}/gate", auth=django_auth, summary="Evaluate a model version's gate")
def gate_evaluate_now(request: HttpRequest, slug: str) -> HttpResponse:
    """Evaluate the gate of ?model=<name>:<version> on the queue's policy; return the snapshot."""
    if not roles.can_evaluate_gate(_user(request)):
        return problem_response(request, 403, "evaluating the gate needs the ml_lead or admin role")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    version = _model_version(request, queue)
    if isinstance(version, HttpResponse):
        return version
    evaluation = gate_evaluation_run(model_version=version, actor=_user(request))
    return api.create_response(request, gate_evaluation_document(evaluation), status=201)


@router.get("/queues/{slug}/gate", auth=django_auth, summary="Read a version's latest evaluation")
def gate_latest_read(request: HttpRequest, slug: str) -> HttpResponse:
    """Return the latest gate evaluation of ?model=<name>:<version>."""
    if not _user(request).has_perm(VIEW_GATE_EVALUATIONS):
        return problem_response(
            request, 403, "reading gate evaluations needs the ml_lead or admin role"
        )
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    version = _model_version(request, queue)
    if isinstance(version, HttpResponse):
        return version
    evaluation = gate_evaluation_latest(model_version=version)
    if evaluation is None:
        return problem_response(
            request,
            404,
            f"{version.key} has not been evaluated yet: POST to this address to evaluate it",
        )
    return api.create_response(request, gate_evaluation_document(evaluation), status=200)


@router.get(
    "/gate-evaluations/{evaluation_id}", auth=django_auth, summary="Read one gate evaluation"
)
def gate_evaluation_read(request: HttpRequest, evaluation_id: int) -> HttpResponse:
    """Return one stored gate evaluation."""
    if not _user(request).has_perm(VIEW_GATE_EVALUATIONS):
        return problem_response(
            request, 403, "reading gate evaluations needs the ml_lead or admin role"
        )
    evaluation = (
        gate_evaluation_get(evaluation_id=evaluation_id) if 0 < evaluation_id <= MAX_ID else None
    )
    if evaluation is None:
        return problem_response(request, 404, f"there is no gate evaluation {evaluation_id}")
    return api.create_response(request, gate_evaluation_document(evaluation), status=200)
