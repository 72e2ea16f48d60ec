"""Rollout pages: every queue's state, one queue's rollout, and the admin's decision screen."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from analytics.gate.display import gate_display
from analytics.gate.evaluation import gate_evaluation_document
from deployments import promotions
from deployments.canary_ladder import canary_ladder
from deployments.models import Deployment, PromotionRequest
from deployments.monitor_panel import monitor_panel
from deployments.rollout import kill_switch_set, rollout_retire, rollout_rollback
from deployments.selectors import queue_model_version_find, rollout_state
from deployments.transitions import TransitionRefused
from inspections.models import Queue
from shadowlab import roles

COMMENT_MAX_CHARS = promotions.TEXT_MAX_CHARS
# Ids are 64-bit in the database; a larger number names nothing (and SQLite would refuse it).
MAX_ID = 2**63 - 1


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


@require_GET
@login_required
@permission_required(roles.VIEW_ROLLOUT, raise_exception=True)
def rollout_index(request: HttpRequest) -> HttpResponse:
    """List every queue's rollout, the queues with requests awaiting a decision first."""
    pending = Q(promotion_requests__status=PromotionRequest.Status.PENDING)
    queues = Queue.objects.annotate(pending=Count("promotion_requests", filter=pending)).order_by(
        "-pending", "name"
    )[:200]
    waiting = (
        PromotionRequest.objects.filter(status=PromotionRequest.Status.PENDING)
        .select_related("queue", "model_version", "requested_by", "evaluation")
        .order_by("requested_at")[:50]
    )
    rows = [{"queue": queue, "state": rollout_state(queue=queue)} for queue in queues]
    return render(
        request,
        "deployments/rollout_index.html",
        {
            "rows": rows,
            "waiting": waiting,
            "can_decide": roles.can_decide_promotion(_user(request)),
        },
    )


@require_GET
@login_required
@permission_required(roles.VIEW_ROLLOUT, raise_exception=True)
def rollout_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Show one queue's live, canary, shadows, standby, kill switch and pending requests."""
    queue = get_object_or_404(Queue, slug=slug)
    user = _user(request)
    return render(
        request,
        "deployments/rollout.html",
        {
            "queue": queue,
            "state": rollout_state(queue=queue),
            "recent": PromotionRequest.objects.filter(queue=queue)
            .exclude(status=PromotionRequest.Status.PENDING)
            .select_related("model_version", "requested_by", "decided_by")[:10],
            "can_decide": roles.can_decide_promotion(user),
            "can_flip": roles.can_flip_kill_switch(user),
            "can_roll_back": roles.can_roll_back(user),
            "monitor": monitor_panel(queue=queue),
            "ladder": canary_ladder(queue=queue),
        },
    )


@require_POST
@login_required
@permission_required(roles.KILL_SWITCH, raise_exception=True)
def kill_switch_post(request: HttpRequest, slug: str) -> HttpResponse:
    """Turn the queue's kill switch on or off."""
    queue = get_object_or_404(Queue, slug=slug)
    on = request.POST.get("on")
    if on not in ("true", "false"):
        return HttpResponse("on must be true or false", status=400, content_type="text/plain")
    kill_switch_set(queue=queue, on=on == "true", actor=_user(request))
    state = "on: every item goes to inspectors" if on == "true" else "off"
    messages.success(request, f"The kill switch of {queue.name} is {state}.")
    return redirect("rollout:queue", slug=queue.slug)


@require_POST
@login_required
@permission_required(roles.DEPLOY_MODELS, raise_exception=True)
def rollback_post(request: HttpRequest, slug: str) -> HttpResponse:
    """Roll a canary or live version back to shadow, with a reason."""
    queue = get_object_or_404(Queue, slug=slug)
    version = queue_model_version_find(queue=queue, key=request.POST.get("model", "")[:200])
    if version is None:
        return HttpResponse(
            "model must name a version of this queue as name:version",
            status=400,
            content_type="text/plain",
        )
    try:
        rollout_rollback(
            queue=queue,
            model_version=version,
            actor=_user(request),
            reason=request.POST.get("reason", ""),
        )
    except (ValueError, TransitionRefused) as exc:
        messages.error(request, f"Not rolled back: {exc}.")
    else:
        live = (
            Deployment.objects.filter(queue=queue, role=Deployment.Role.LIVE)
            .select_related("model_version")
            .first()
        )
        switched = f" {live.model_version.key} is live again." if live is not None else ""
        messages.success(request, f"{version.key} is back in shadow.{switched}")
    return redirect("rollout:queue", slug=queue.slug)


@require_POST
@login_required
@permission_required(roles.DEPLOY_MODELS, raise_exception=True)
def retire_post(request: HttpRequest, slug: str) -> HttpResponse:
    """Retire the standby (or a shadow) version, with a reason."""
    queue = get_object_or_404(Queue, slug=slug)
    version = queue_model_version_find(queue=queue, key=request.POST.get("model", "")[:200])
    if version is None:
        return HttpResponse(
            "model must name a version of this queue as name:version",
            status=400,
            content_type="text/plain",
        )
    try:
        rollout_retire(
            queue=queue,
            model_version=version,
            actor=_user(request),
            reason=request.POST.get("reason", ""),
        )
    except (ValueError, TransitionRefused) as exc:
        messages.error(request, f"Not retired: {exc}.")
    else:
        messages.success(request, f"{version.key} is retired: it no longer scores items.")
    return redirect("rollout:queue", slug=queue.slug)


def _promotion(request_id: int) -> PromotionRequest:
    if request_id > MAX_ID:
        raise Http404("no such promotion request")
    return get_object_or_404(
        PromotionRequest.objects.select_related(
            "queue", "model_version", "requested_by", "decided_by", "evaluation__policy"
        ),
        pk=request_id,
    )


def _decision_context(request: HttpRequest, promotion: PromotionRequest) -> dict[str, Any]:
    user = _user(request)
    evaluation = promotion.evaluation
    age_hours = (timezone.now() - evaluation.created_at).total_seconds() / 3600
    allowed = evaluation.policy.max_evaluation_age_hours
    return {
        "promotion": promotion,
        "evaluation": gate_evaluation_document(evaluation),
        "display": gate_display(evaluation.snapshot),
        "evaluation_row": evaluation,
        "age_hours": age_hours,
        "fresh": age_hours <= allowed,
        "allowed_hours": allowed,
        "own": promotion.requested_by_id == user.pk,
        "can_decide": roles.can_decide_promotion(user),
        "state": rollout_state(queue=promotion.queue),
        "comment_max": COMMENT_MAX_CHARS,
    }


@require_GET
@login_required
@permission_required(roles.VIEW_PROMOTIONS, raise_exception=True)
def promotion_page(request: HttpRequest, request_id: int) -> HttpResponse:
    """Show a promotion request with its evaluation in full, and the decision form to admins."""
    promotion = _promotion(request_id)
    return render(request, "deployments/promotion.html", _decision_context(request, promotion))


@require_POST
@login_required
@permission_required(roles.DECIDE_PROMOTION, raise_exception=True)
def promotion_decide(request: HttpRequest, request_id: int) -> HttpResponse:
    """Approve or reject a request; the requester may not decide their own (403)."""
    promotion = _promotion(request_id)
    decision = request.POST.get("decision")
    comment = request.POST.get("comment", "")
    if decision not in ("approve", "reject"):
        return HttpResponse("decision must be approve or reject", status=400)
    try:
        if decision == "approve":
            promotions.promotion_approve(request=promotion, actor=_user(request), comment=comment)
        else:
            promotions.promotion_reject(request=promotion, actor=_user(request), comment=comment)
    except PermissionDenied:
        raise
    except (ValueError, TransitionRefused) as exc:
        context = _decision_context(request, promotion)
        context.update(error=str(exc), comment=comment[:COMMENT_MAX_CHARS])
        return render(request, "deployments/promotion.html", context, status=409)
    verb = "approved" if decision == "approve" else "rejected"
    messages.success(request, f"Promotion request {promotion.pk} {verb}.")
    return redirect(reverse("rollout:queue", kwargs={"slug": promotion.queue.slug}))
