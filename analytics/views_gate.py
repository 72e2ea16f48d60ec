"""A model version's gate page: its latest evaluation, evaluating again, requesting promotion."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from analytics.forms import MAX_ID, PromotionRequestForm
from analytics.gate.display import gate_display
from analytics.gate.evaluation import gate_evaluation_latest, gate_evaluation_run
from analytics.gate.policy import gate_policy_current
from analytics.models import GateEvaluation, GatePolicy
from deployments.canary_ladder import version_step
from deployments.canary_steps import ladder_text, share_text
from deployments.models import ModelVersion, PromotionRequest
from deployments.promotions import (
    PromotionConflict,
    PromotionInvalid,
    promotion_request_create,
)
from deployments.selectors import queue_model_version_find
from deployments.transitions import TransitionRefused
from inspections.models import Queue
from shadowlab import roles
from shadowlab.http import AuthenticatedRequest

VIEW_GATE_EVALUATIONS = "analytics.view_gateevaluation"


def _scope(slug: str, key: str) -> tuple[Queue, ModelVersion]:
    queue = get_object_or_404(Queue, slug=slug)
    version = queue_model_version_find(queue=queue, key=key)
    if version is None:
        raise Http404(f"queue '{slug}' has no model version {key[:200]}")
    return queue, version


def _gate_url(queue: Queue, version: ModelVersion) -> str:
    return reverse("gate:page", args=[queue.slug, version.key])


def _shown_evaluation(
    request: AuthenticatedRequest, version: ModelVersion, latest: GateEvaluation | None
) -> GateEvaluation | None:
    """Return the evaluation asked for with ?evaluation=<id>, else the latest one."""
    wanted = request.GET.get("evaluation", "")
    if not wanted:
        return latest
    # ASCII digits only ("²" is a digit to isdigit(), not to int()), and few enough of them
    # for int() (which refuses past 4,300) and for a 64-bit id.
    digits = wanted.isascii() and wanted.isdigit() and len(wanted) <= len(str(MAX_ID))
    if not digits or not 0 < int(wanted) <= MAX_ID:
        raise Http404(f"'{wanted[:30]}' is not an evaluation id")
    evaluation = GateEvaluation.objects.filter(pk=int(wanted), model_version=version).first()
    if evaluation is None:
        raise Http404(f"{version.key} has no gate evaluation {wanted}")
    return evaluation


def _request_refusal(
    *,
    evaluation: GateEvaluation | None,
    latest: GateEvaluation | None,
    policy: GatePolicy,
    age: timedelta | None,
    pending: PromotionRequest | None,
) -> str:
    """Return why no promotion can be requested now, or "" when the form may be shown."""
    if latest is None or evaluation is None or age is None:
        return "No promotion can be requested before the gate has been evaluated."
    if evaluation.pk != latest.pk:
        return "This is an older evaluation: a request relies on the latest one."
    if pending is not None:
        return (
            f"Promotion request #{pending.pk} (to {pending.target} at {pending.share * 100:g}%, by "
            f"{pending.requested_by.get_username()}) is pending; an admin other than the "
            "requester decides it, and a version has one pending request at a time."
        )
    if latest.verdict != GateEvaluation.Verdict.PASS:
        return (
            "No promotion can be requested: the latest evaluation does not pass the gate"
            " (not enough evidence never promotes)."
        )
    if age >= timedelta(hours=policy.max_evaluation_age_hours):
        return (
            "No promotion can be requested: the latest evaluation is older than the policy's"
            f" {policy.max_evaluation_age_hours} hours. Evaluate again."
        )
    if latest.policy_id != policy.pk:
        return (
            f"The policy has changed since this evaluation (it used version"
            f" {latest.policy.version}, the current one is {policy.version}): evaluate again"
            " before requesting a promotion."
        )
    return ""


def _gate_render(
    request: AuthenticatedRequest,
    queue: Queue,
    version: ModelVersion,
    *,
    request_form: PromotionRequestForm | None = None,
    request_error: str = "",
    status: int = 200,
) -> HttpResponse:
    latest = gate_evaluation_latest(model_version=version)
    evaluation = _shown_evaluation(request, version, latest)
    policy = gate_policy_current(queue=queue)
    age = timezone.now() - evaluation.created_at if evaluation is not None else None
    pending = (
        PromotionRequest.objects.select_related("requested_by")
        .filter(model_version=version, status=PromotionRequest.Status.PENDING)
        .first()
    )
    refusal = _request_refusal(
        evaluation=evaluation, latest=latest, policy=policy, age=age, pending=pending
    )
    step = version_step(model_version=version)
    if request_form is None and evaluation is not None:
        initial: dict[str, object] = {"evaluation": evaluation.pk}
        if step.proposal is not None:
            # The form proposes the next step on the queue's canary ladder.
            initial.update(target=step.proposal.target, share=step.proposal.share)
        request_form = PromotionRequestForm(initial=initial)
    context = {
        "queue": queue,
        "model_version": version,
        "evaluation": evaluation,
        "latest": latest,
        "display": gate_display(evaluation.snapshot) if evaluation is not None else None,
        "policy": policy,
        "age": age,
        "can_evaluate": roles.can_evaluate_gate(request.user),
        "can_request": roles.can_request_promotion(request.user),
        "request_refusal": refusal,
        "request_form": request_form,
        "request_error": request_error,
        "next_step": step.proposal,
        "next_step_share": share_text(step.proposal.share) if step.proposal else "",
        "ladder": ladder_text(step.steps),
        "json_url": f"/api/v1/gate-evaluations/{evaluation.pk}" if evaluation else "",
        "report_query": urlencode({"model": version.key}),
    }
    return render(request, "analytics/gate.html", context, status=status)


@require_GET
@login_required
@permission_required(VIEW_GATE_EVALUATIONS, raise_exception=True)
def gate_page(request: AuthenticatedRequest, slug: str, key: str) -> HttpResponse:
    """Show a model version's latest gate evaluation (or ?evaluation=<id>), by criterion."""
    queue, version = _scope(slug, key)
    return _gate_render(request, queue, version)


@require_POST
@login_required
@permission_required(roles.EVALUATE_GATE, raise_exception=True)
def gate_evaluate(request: AuthenticatedRequest, slug: str, key: str) -> HttpResponse:
    """Evaluate the model version's gate on the queue's current policy, then show it."""
    queue, version = _scope(slug, key)
    evaluation = gate_evaluation_run(model_version=version, actor=request.user)
    messages.success(
        request, f"Evaluated {version.key}: {gate_display(evaluation.snapshot).headline}"
    )
    return redirect(_gate_url(queue, version))


@require_POST
@login_required
@permission_required(roles.REQUEST_PROMOTION, raise_exception=True)
def promotion_request(request: AuthenticatedRequest, slug: str, key: str) -> HttpResponse:
    """File a request to promote the model version on its latest evaluation."""
    queue, version = _scope(slug, key)
    form = PromotionRequestForm(request.POST)
    if not form.is_valid():
        return _gate_render(request, queue, version, request_form=form, status=400)
    data = form.cleaned_data
    evaluation = GateEvaluation.objects.filter(pk=data["evaluation"], model_version=version).first()
    if evaluation is None:
        form.add_error(None, f"{version.key} has no gate evaluation {data['evaluation']}.")
        return _gate_render(request, queue, version, request_form=form, status=400)
    try:
        promotion = promotion_request_create(
            queue=queue,
            model_version=version,
            target=data["target"],
            share=data["share"],
            evaluation=evaluation,
            actor=request.user,
            note=data["note"],
        )
    except (PromotionInvalid, PromotionConflict, TransitionRefused) as exc:
        status = 400 if isinstance(exc, PromotionInvalid) else 409
        return _gate_render(
            request, queue, version, request_form=form, request_error=str(exc), status=status
        )
    messages.success(
        request,
        f"Promotion request #{promotion.pk} of {version.key} to {promotion.target} at"
        f" {promotion.share * 100:g}% is pending: an admin other than you decides it.",
    )
    return redirect(_gate_url(queue, version))
