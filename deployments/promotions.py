"""Request, approve and reject promotions; approval applies the rollout move. All audited."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from analytics.models import GateEvaluation, GatePolicy
from deployments import transitions
from deployments.audit import audit_record
from deployments.canary_ladder import VersionStep, version_step
from deployments.canary_steps import share_check, share_text
from deployments.health_check import live_switch_health_require
from deployments.models import ModelVersion, PromotionRequest
from deployments.notifications import promotion_request_notify_enqueue
from deployments.rollout import rollout_move, rollout_move_check, version_role
from inspections.models import Queue
from shadowlab import roles

TEXT_MAX_CHARS = 2000


class PromotionInvalid(ValueError):
    """The request is malformed or names the wrong evidence; nothing changed."""


class PromotionConflict(ValueError):
    """The request cannot be granted in the current state; nothing changed."""


class PromotionForbidden(PermissionDenied):
    """The actor may not do this; nothing changed."""


def evidence_of(evaluation: GateEvaluation) -> str:
    """Return how the audit log names a gate evaluation."""
    return f"gate-evaluation:{evaluation.pk}"


def evaluation_check(
    *, evaluation: GateEvaluation, model_version: ModelVersion, now: datetime
) -> None:
    """Raise unless the evaluation is of this version, passed, and is fresh enough to rely on.

    How old it may be is its policy's max_evaluation_age_hours (24 by default), and that
    policy must still be the queue's current one.
    """
    if evaluation.model_version_id != model_version.pk:
        raise PromotionInvalid(
            f"gate evaluation {evaluation.pk} is of {evaluation.model_version.key}, "
            f"not of {model_version.key}"
        )
    if evaluation.verdict == GateEvaluation.Verdict.INSUFFICIENT:
        raise PromotionConflict(
            f"gate evaluation {evaluation.pk} found the evidence insufficient; an insufficient "
            "verdict never promotes: gather more judged items and evaluate again"
        )
    if evaluation.verdict != GateEvaluation.Verdict.PASS:
        raise PromotionConflict(
            f"gate evaluation {evaluation.pk} failed; only a passing evaluation promotes"
        )
    current = GatePolicy.objects.filter(queue_id=evaluation.queue_id).order_by("-version").first()
    if current is not None and current.pk != evaluation.policy_id:
        # A policy edited since (say, a floor raised) must not be bypassed by older evidence.
        raise PromotionConflict(
            f"the gate policy changed since evaluation {evaluation.pk} (it used version "
            f"{evaluation.policy.version}, the current one is {current.version}): evaluate again"
        )
    limit_hours = evaluation.policy.max_evaluation_age_hours
    age = now - evaluation.created_at
    if age > timedelta(hours=limit_hours):
        raise PromotionConflict(
            f"gate evaluation {evaluation.pk} is {age.total_seconds() / 3600:.1f} hours old; a "
            f"promotion relies on one at most {limit_hours} hours old: evaluate the gate again"
        )


def _text_clean(text: str, name: str, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise PromotionInvalid(f"a {name} is required")
    if len(text) > TEXT_MAX_CHARS:
        raise PromotionInvalid(f"the {name} may be at most {TEXT_MAX_CHARS} characters")
    return text


def _share_clean(target: str, share: float | None) -> float:
    if target == PromotionRequest.Target.LIVE:
        if share is not None and share != 1:
            raise PromotionInvalid("a live version decides every item: leave share out or give 1")
        return 1.0
    if target != PromotionRequest.Target.CANARY:
        raise PromotionInvalid(f"target must be 'canary' or 'live', got {target!r}")
    if share is None or not math.isfinite(share) or not 0 < share < 1:
        raise PromotionInvalid(
            f"a canary needs a share strictly between 0 and 1, such as 0.05; got {share}"
        )
    return share


def _target_and_share(
    target: str | None, share: float | None, step: VersionStep, key: str
) -> tuple[str, float | None]:
    """Fill in what the request leaves out from the version's next step on the ladder.

    No target: the next step's (a shadow version's first step, a canary's next one, live for
    the last). A canary target without a share: the next step's share.
    """
    proposal = step.proposal
    if target is None:
        if proposal is None:
            raise PromotionInvalid(
                f"target is needed: {key} is {step.role.replace('_', ' ')}, and only a shadow or "
                "canary version has a next step to propose"
            )
        target = proposal.target
    if target == PromotionRequest.Target.CANARY and share is None:
        if proposal is None:
            raise PromotionInvalid(
                "a canary needs a share strictly between 0 and 1, such as 0.05; "
                f"{key} has no next step to propose"
            )
        if proposal.is_live_switch:
            raise transitions.TransitionRefused(
                f"the next step of {key}, after {share_text(step.share)}, is the live switch: "
                "request target live, or give a share larger than the present one"
            )
        share = proposal.share
    return target, share


def _move_check(model_version: ModelVersion, target: str, share: float) -> str:
    move = transitions.promotion_move(role=version_role(model_version), target=target)
    rollout_move_check(
        model_version=model_version,
        move=move,
        share=share if target == PromotionRequest.Target.CANARY else None,
    )
    return move


def promotion_request_create(
    *,
    queue: Queue,
    model_version: ModelVersion,
    target: str | None,
    share: float | None,
    evaluation: GateEvaluation,
    actor: User,
    note: str = "",
) -> PromotionRequest:
    """File a request to move a version to canary (with a share) or live, on a passing evaluation.

    Left out, target and share are the version's next step on the queue's canary ladder
    (GatePolicy.canary_steps): a shadow version's first step, a canary's next one, live for
    the last. A share given for a canary must be larger than the one it decides now.
    Raise PromotionForbidden, PromotionInvalid, PromotionConflict or TransitionRefused;
    nothing is stored then.
    """
    if not actor.has_perm(roles.REQUEST_PROMOTION):
        raise PromotionForbidden("requesting a promotion needs the ml_lead or admin role")
    if model_version.queue_id != queue.pk:
        raise PromotionInvalid(f"{model_version.key} belongs to queue {model_version.queue.slug}")
    step = version_step(model_version=model_version)
    target, share = _target_and_share(target, share, step, model_version.key)
    share = _share_clean(target, share)
    note = _text_clean(note, "note", required=False)
    evaluation_check(evaluation=evaluation, model_version=model_version, now=timezone.now())
    if target == PromotionRequest.Target.CANARY:
        share_check(
            steps=step.steps,
            role=step.role,
            current_share=step.share,
            share=share,
            version=model_version.key,
        )
    _move_check(model_version, target, share)
    pending = PromotionRequest.objects.filter(
        model_version=model_version, status=PromotionRequest.Status.PENDING
    ).first()
    if pending is not None:
        raise PromotionConflict(
            f"{model_version.key} already has a pending request, {pending.pk} "
            f"({pending.target}); it must be decided first"
        )
    try:
        with transaction.atomic():
            request = PromotionRequest.objects.create(
                queue=queue,
                model_version=model_version,
                target=target,
                share=share,
                evaluation=evaluation,
                requested_by=actor,
                note=note,
            )
            audit_record(
                actor=actor,
                action="promotion.request",
                subject=request,
                after=_request_state(request),
                queue=queue,
                evidence=evidence_of(evaluation),
            )
            promotion_request_notify_enqueue(request=request)
    except IntegrityError:
        # Another request for this version was filed between the check and the insert.
        raise PromotionConflict(
            f"{model_version.key} already has a pending request; it must be decided first"
        ) from None
    return request


def _request_state(request: PromotionRequest) -> dict[str, object]:
    return {
        "status": request.status,
        "model": request.model_version.key,
        "target": request.target,
        "share": request.share,
        "evaluation": request.evaluation_id,
        "requested_by": request.requested_by.get_username(),
        "comment": request.comment,
    }


def _decidable(request_id: int, actor: User, verb: str, *, lock: bool = True) -> PromotionRequest:
    """Return the request (locked, unless lock is False) if the actor may decide it now."""
    if not actor.has_perm(roles.DECIDE_PROMOTION):
        raise PromotionForbidden(f"{verb} a promotion needs the admin role")
    rows = PromotionRequest.objects.select_related(
        "model_version__queue", "evaluation__policy", "requested_by", "queue"
    )
    if lock:
        rows = rows.select_for_update(of=("self",))
    request = rows.get(pk=request_id)
    if request.requested_by_id == actor.pk:
        raise PromotionForbidden(
            f"{actor.get_username()} filed promotion request {request.pk}; another admin must "
            "decide it (four eyes)"
        )
    if request.status != PromotionRequest.Status.PENDING:
        raise PromotionConflict(f"promotion request {request.pk} is already {request.status}")
    return request


def _decide(request: PromotionRequest, actor: User, status: str, comment: str) -> None:
    before = _request_state(request)
    request.status = status
    request.decided_by = actor
    request.decided_at = timezone.now()
    request.comment = comment
    request.save(update_fields=["status", "decided_by", "decided_at", "comment"])
    approved = status == PromotionRequest.Status.APPROVED
    audit_record(
        actor=actor,
        action="promotion.approve" if approved else "promotion.reject",
        subject=request,
        before=before,
        after=_request_state(request),
        queue=request.queue,
        evidence=evidence_of(request.evaluation),
    )


def promotion_approve(
    *, request: PromotionRequest, actor: User, comment: str = ""
) -> PromotionRequest:
    """Approve a pending request and apply its rollout move, in one transaction.

    The evaluation's verdict and freshness and the move's legality are checked again now;
    if any fails, the reason is raised and nothing changes (the request stays pending). A
    live switch first passes the version's health check (deployments.health_check), run
    before the transaction; a failed one raises LiveSwitchRefused with every reason and
    leaves only its audit event.
    """
    comment = _text_clean(comment, "comment", required=False)
    ahead = _decidable(request.pk, actor, "approving", lock=False)
    if ahead.target == PromotionRequest.Target.LIVE:
        evaluation_check(
            evaluation=ahead.evaluation, model_version=ahead.model_version, now=timezone.now()
        )
        _move_check(ahead.model_version, ahead.target, ahead.share)
        live_switch_health_require(
            model_version=ahead.model_version, actor=actor, evidence=evidence_of(ahead.evaluation)
        )
    with transaction.atomic():
        request = _decidable(request.pk, actor, "approving")
        model_version = request.model_version
        evaluation_check(
            evaluation=request.evaluation, model_version=model_version, now=timezone.now()
        )
        move = _move_check(model_version, request.target, request.share)
        rollout_move(
            model_version=model_version,
            move=move,
            actor=actor,
            share=request.share if move != transitions.LIVE_SWITCH else None,
            promotion=request,
            evidence=evidence_of(request.evaluation),
        )
        _decide(request, actor, PromotionRequest.Status.APPROVED, comment)
    return request


def promotion_reject(*, request: PromotionRequest, actor: User, comment: str) -> PromotionRequest:
    """Reject a pending request with a comment saying why; no rollout change."""
    comment = _text_clean(comment, "comment", required=True)
    with transaction.atomic():
        request = _decidable(request.pk, actor, "rejecting")
        _decide(request, actor, PromotionRequest.Status.REJECTED, comment)
    return request
