"""The rollout API for a browser session: promotion requests and decisions, kill switch, rollback.

Every operation needs a logged-in user (401 otherwise) and a valid CSRF token on writes;
the permission each needs is checked in the handler (403 with the reason).
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema
from ninja.security import django_auth
from pydantic import StrictBool

from analytics.models import GateEvaluation
from deployments import selectors
from deployments.promotions import (
    PromotionConflict,
    PromotionInvalid,
    promotion_approve,
    promotion_reject,
    promotion_request_create,
)
from deployments.rollout import kill_switch_set, rollout_retire, rollout_rollback
from deployments.transitions import TransitionRefused
from inspections.models import Queue
from shadowlab import roles
from shadowlab.api import api, problem_response, queue_or_problem, session_with

router = Router(tags=["rollout"], auth=django_auth)

PAGE_SIZE_DEFAULT = 20


class PromotionIn(Schema):
    model: str = Field(..., max_length=200, description="The version as <name>:<version>.")
    target: str | None = Field(
        None,
        description="'canary' or 'live'; left out, the version's next step on the queue's "
        "canary ladder (the gate policy's canary_steps): a shadow version's first step, a "
        "canary's next one, live after the last.",
    )
    share: float | None = Field(
        None,
        description="A canary's share of items, strictly between 0 and 1 and larger than the "
        "one it decides now; left out, the next step's share. 1 or left out for live.",
    )
    evaluation: int = Field(..., description="Id of the passing gate evaluation relied on.")
    note: str = Field("", max_length=2000)


class DecisionIn(Schema):
    comment: str = Field("", max_length=2000, description="Required to reject.")


class KillSwitchIn(Schema):
    on: StrictBool


class RollbackIn(Schema):
    model: str = Field(..., max_length=200)
    reason: str = Field(..., max_length=500)


class RetireIn(Schema):
    model: str = Field(..., max_length=200, description="The standby (or a shadow) version.")
    reason: str = Field(..., max_length=500)


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _refused(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Answer a refused service call: 403 not allowed, 409 not now, 400 bad input."""
    if isinstance(exc, PermissionDenied):
        return problem_response(request, 403, str(exc))
    if isinstance(exc, PromotionConflict | TransitionRefused):
        return problem_response(request, 409, str(exc))
    return problem_response(request, 400, str(exc))


def _model_version(request: HttpRequest, queue: Queue, key: str) -> Any:
    try:
        selectors.model_key_parse(key)
    except ValueError as exc:
        return problem_response(request, 400, str(exc))
    version = selectors.queue_model_version_find(queue=queue, key=key)
    if version is None:
        return problem_response(request, 404, f"queue '{queue.slug}' has no model version {key}")
    return version


def _page_number(text: str | None, name: str, default: int) -> int:
    if text in (None, ""):
        return default
    try:
        return int(text)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {text!r}") from None


@router.post(
    "/queues/{slug}/promotions",
    auth=session_with(roles.REQUEST_PROMOTION, "requesting a promotion needs the ml_lead role"),
    summary="Request a promotion",
)
def promotion_request(request: HttpRequest, slug: str, payload: PromotionIn) -> HttpResponse:
    """File a request to move a version to canary or live on a passing gate evaluation."""
    user = _user(request)
    if not roles.can_request_promotion(user):
        return problem_response(request, 403, "requesting a promotion needs the ml_lead role")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    version = _model_version(request, queue, payload.model)
    if isinstance(version, HttpResponse):
        return version
    evaluation = (
        GateEvaluation.objects.select_related("policy", "model_version")
        .filter(pk=payload.evaluation, queue=queue)
        .first()
    )
    if evaluation is None:
        return problem_response(
            request, 404, f"queue '{slug}' has no gate evaluation {payload.evaluation}"
        )
    try:
        created = promotion_request_create(
            queue=queue,
            model_version=version,
            target=payload.target,
            share=payload.share,
            evaluation=evaluation,
            actor=user,
            note=payload.note,
        )
    except (PermissionDenied, PromotionInvalid, PromotionConflict, TransitionRefused) as exc:
        return _refused(request, exc)
    return api.create_response(request, selectors.promotion_request_json(created), status=201)


@router.get("/queues/{slug}/promotions", summary="List a queue's promotion requests")
def promotion_list(request: HttpRequest, slug: str) -> HttpResponse:
    """Return a page of the queue's promotion requests, newest first; ?status= filters."""
    if not _user(request).has_perm(roles.VIEW_PROMOTIONS):
        return problem_response(request, 403, "promotion requests are for ml_leads and admins")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    try:
        page = selectors.promotion_requests_page(
            queue=queue,
            status=request.GET.get("status") or None,
            page=_page_number(request.GET.get("page"), "page", 1),
            page_size=_page_number(request.GET.get("page_size"), "page_size", PAGE_SIZE_DEFAULT),
        )
    except ValueError as exc:
        return problem_response(request, 400, str(exc))
    body = {
        "count": page.total,
        "page": page.page,
        "page_size": page.page_size,
        "results": [selectors.promotion_request_json(r) for r in page.requests],
    }
    return api.create_response(request, body, status=200)


def _promotion(request: HttpRequest, request_id: int) -> Any:
    found = selectors.promotion_request_find(request_id)
    if found is None:
        return problem_response(request, 404, f"there is no promotion request {request_id}")
    return found


@router.get("/promotions/{request_id}", summary="Read a promotion request")
def promotion_read(request: HttpRequest, request_id: int) -> HttpResponse:
    """Return one promotion request with its decision, if any."""
    if not _user(request).has_perm(roles.VIEW_PROMOTIONS):
        return problem_response(request, 403, "promotion requests are for ml_leads and admins")
    found = _promotion(request, request_id)
    if isinstance(found, HttpResponse):
        return found
    return api.create_response(request, selectors.promotion_request_json(found), status=200)


@router.post(
    "/promotions/{request_id}/approve",
    auth=session_with(roles.DECIDE_PROMOTION, "deciding a promotion needs the admin role"),
    summary="Approve a promotion request",
)
def promotion_approve_view(
    request: HttpRequest, request_id: int, payload: DecisionIn
) -> HttpResponse:
    """Approve another person's pending request and apply its rollout move."""
    return _decide(request, request_id, payload, approve=True)


@router.post(
    "/promotions/{request_id}/reject",
    auth=session_with(roles.DECIDE_PROMOTION, "deciding a promotion needs the admin role"),
    summary="Reject a promotion request",
)
def promotion_reject_view(
    request: HttpRequest, request_id: int, payload: DecisionIn
) -> HttpResponse:
    """Reject another person's pending request with a comment."""
    return _decide(request, request_id, payload, approve=False)


def _decide(request: HttpRequest, request_id: int, payload: DecisionIn, *, approve: bool) -> Any:
    user = _user(request)
    if not roles.can_decide_promotion(user):
        return problem_response(request, 403, "deciding a promotion needs the admin role")
    found = _promotion(request, request_id)
    if isinstance(found, HttpResponse):
        return found
    decide = promotion_approve if approve else promotion_reject
    try:
        decided = decide(request=found, actor=user, comment=payload.comment)
    except (PermissionDenied, PromotionInvalid, PromotionConflict, TransitionRefused) as exc:
        return _refused(request, exc)
    return api.create_response(request, selectors.promotion_request_json(decided), status=200)


@router.post(
    "/queues/{slug}/kill-switch",
    auth=session_with(roles.KILL_SWITCH, "the kill switch needs the admin role"),
    summary="Turn a queue's kill switch on or off",
)
def kill_switch(request: HttpRequest, slug: str, payload: KillSwitchIn) -> HttpResponse:
    """While the kill switch is on, every item of the queue goes to inspectors."""
    user = _user(request)
    if not roles.can_flip_kill_switch(user):
        return problem_response(request, 403, "the kill switch needs the admin role")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    try:
        kill_switch_set(queue=queue, on=payload.on, actor=user)
    except PermissionDenied as exc:
        return _refused(request, exc)
    return api.create_response(request, selectors.rollout_state(queue=queue), status=200)


@router.get("/queues/{slug}/rollout", summary="Read a queue's rollout state")
def rollout(request: HttpRequest, slug: str) -> HttpResponse:
    """Return live, canary and share, shadows, standby, kill switch and pending requests."""
    if not _user(request).has_perm(roles.VIEW_ROLLOUT):
        return problem_response(request, 403, "the rollout state is for ml_leads and admins")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    return api.create_response(request, selectors.rollout_state(queue=queue), status=200)


@router.post(
    "/queues/{slug}/rollback",
    auth=session_with(roles.DEPLOY_MODELS, "rolling a model back needs the admin role"),
    summary="Roll a canary or live version back to shadow",
)
def rollback(request: HttpRequest, slug: str, payload: RollbackIn) -> HttpResponse:
    """Roll back a version by hand; a rolled-back live version's standby goes live again."""
    user = _user(request)
    if not roles.can_roll_back(user):
        return problem_response(request, 403, "rolling a model back needs the admin role")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    version = _model_version(request, queue, payload.model)
    if isinstance(version, HttpResponse):
        return version
    try:
        rollout_rollback(queue=queue, model_version=version, actor=user, reason=payload.reason)
    except (PermissionDenied, ValueError) as exc:
        return _refused(request, exc)
    return api.create_response(request, selectors.rollout_state(queue=queue), status=200)


@router.post(
    "/queues/{slug}/retire",
    auth=session_with(roles.DEPLOY_MODELS, "retiring a model needs the admin role"),
    summary="Retire the standby (or a shadow) version",
)
def retire(request: HttpRequest, slug: str, payload: RetireIn) -> HttpResponse:
    """Retire a version that decides nothing; a rollback of the live one then has no standby."""
    user = _user(request)
    if not roles.can_roll_back(user):
        return problem_response(request, 403, "retiring a model needs the admin role")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    version = _model_version(request, queue, payload.model)
    if isinstance(version, HttpResponse):
        return version
    try:
        rollout_retire(queue=queue, model_version=version, actor=user, reason=payload.reason)
    except (PermissionDenied, ValueError) as exc:
        return _refused(request, exc)
    return api.create_response(request, selectors.rollout_state(queue=queue), status=200)
