"""The deferral threshold of a queue over the API, for an admin's browser session.

A signed-in session (401 otherwise) with a valid CSRF token, as the rollout API's writes.
"""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema
from ninja.security import django_auth

from deployments.deferral import queue_deferral_threshold_set
from deployments.models import RolloutControl
from inspections.models import Queue
from shadowlab import roles
from shadowlab.api import api, problem_response, queue_or_problem, session_with

router = Router(tags=["rollout"], auth=django_auth)

EVIDENCE_MAX_CHARS = 100


class DeferralThresholdIn(Schema):
    threshold: float = Field(
        ...,
        description="Model decisions less confident than this go to inspectors instead; "
        "from 0 (defer nothing) to 1.",
        ge=0.0,
        le=1.0,
        allow_inf_nan=False,
        strict=True,
    )
    evidence: str = Field(
        "",
        max_length=EVIDENCE_MAX_CHARS,
        description="What the threshold was chosen on, kept in the audit log.",
    )


def _body(queue: Queue) -> dict[str, object]:
    control = RolloutControl.objects.filter(queue=queue).first()
    return {
        "queue": queue.slug,
        "deferral_threshold": queue.deferral_threshold,
        "routing_version": control.routing_version if control else 0,
    }


@router.put(
    "/queues/{slug}/deferral-threshold",
    auth=session_with(roles.CHANGE_QUEUE, "setting the deferral threshold needs the admin role"),
    summary="Set a queue's deferral threshold",
)
def deferral_threshold_put(
    request: HttpRequest, slug: str, payload: DeferralThresholdIn
) -> HttpResponse:
    """Set the confidence under which a model decision goes to inspectors; admins only."""
    user = cast(User, request.user)
    if not roles.can_set_deferral_threshold(user):
        return problem_response(request, 403, "setting the deferral threshold needs the admin role")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    try:
        queue = queue_deferral_threshold_set(
            queue=queue, threshold=payload.threshold, actor=user, evidence=payload.evidence
        )
    except PermissionDenied as exc:
        return problem_response(request, 403, str(exc))
    except ValueError as exc:
        return problem_response(request, 400, str(exc))
    return api.create_response(request, _body(queue), status=200)


@router.get("/queues/{slug}/deferral-threshold", summary="Read a queue's deferral threshold")
def deferral_threshold_get(request: HttpRequest, slug: str) -> HttpResponse:
    """Return the queue's deferral threshold and routing version; ml_leads and admins."""
    if not cast(User, request.user).has_perm(roles.VIEW_ROLLOUT):
        return problem_response(request, 403, "the rollout settings are for ml_leads and admins")
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    return api.create_response(request, _body(queue), status=200)
