"""Advance canaries by themselves, when their queue's policy allows it, one step at a time.

For each canary whose gate policy has auto_advance on and whose soak time
(policy.soak_minutes since Deployment.share_changed_at) has passed, the gate is evaluated
on the canary's own audit sample since that step (analytics.gate.audit_evaluation). On a
fresh passing evaluation the canary takes its next step on the ladder through the same
rollout move an approval makes, with the system as actor and the evaluation as evidence;
the last step is the blue-green switch and passes the health check first. A failing or
insufficient evaluation leaves the canary where it is; the evaluation is stored and
audited, and the next one is made no sooner than CANARY_EVALUATION_INTERVAL_MINUTES later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.gate.audit_evaluation import gate_evaluation_audit_latest, gate_evaluation_audit_run
from analytics.gate.policy import gate_policy_current
from analytics.models import GateEvaluation
from deployments import transitions
from deployments.canary_ladder import policy_steps
from deployments.canary_steps import StepProposal, share_text, step_next
from deployments.health_check import LiveSwitchRefused, live_switch_health_require
from deployments.models import Deployment, PromotionRequest, RolloutControl
from deployments.promotions import (
    PromotionConflict,
    PromotionInvalid,
    evaluation_check,
    evidence_of,
)
from deployments.rollout import queue_lock, rollout_move

log = logging.getLogger("shadowlab.rollout")

OFF, WAITING, HELD, REFUSED, ADVANCED, ERROR = (
    "off",
    "waiting",
    "held",
    "refused",
    "advanced",
    "error",
)
EVALUATION_INTERVAL_MINUTES_DEFAULT = 10.0


@dataclass(frozen=True)
class CanaryAdvance:
    """What one run did with one canary, and why, as a sentence."""

    queue: str
    model: str
    outcome: str
    detail: str
    share_before: float
    share_after: float
    evaluation: int | None = None


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def canary_step_since(deployment: Deployment) -> datetime:
    """Return when the canary took its present step: its soak time runs from here."""
    return deployment.share_changed_at or deployment.started_at


def _evaluation_interval() -> timedelta:
    minutes = settings.SHADOWLAB.get(
        "CANARY_EVALUATION_INTERVAL_MINUTES", EVALUATION_INTERVAL_MINUTES_DEFAULT
    )
    return timedelta(minutes=float(minutes))


def _refusal(evaluation: GateEvaluation, canary: Deployment, now: datetime) -> str:
    """Return why the evaluation cannot advance the canary, "" when it can."""
    if evaluation.sample != "audit" or evaluation.created_at < canary_step_since(canary):
        return f"evaluation {evaluation.pk} is not of the audit sample since this step"
    try:
        evaluation_check(evaluation=evaluation, model_version=canary.model_version, now=now)
    except (PromotionConflict, PromotionInvalid) as exc:
        return str(exc)
    return ""


def _evaluation(canary: Deployment, now: datetime) -> tuple[GateEvaluation | None, str]:
    """Return a fresh passing audit evaluation of this step, or None and why the canary stays."""
    since = canary_step_since(canary)
    version = canary.model_version
    latest = gate_evaluation_audit_latest(model_version=version, since=since)
    if latest is not None and not _refusal(latest, canary, now):
        return latest, ""
    if latest is not None and latest.created_at > now - _evaluation_interval():
        # Evaluated a moment ago without passing: the audit sample has barely grown since.
        again = latest.created_at + _evaluation_interval()
        return None, (
            f"audit-sample evaluation {latest.pk} did not pass ({_refusal(latest, canary, now)}); "
            f"the next one is made after {_utc(again)}"
        )
    evaluation = gate_evaluation_audit_run(model_version=version, since=since, now=now)
    refusal = _refusal(evaluation, canary, now)
    return (None, refusal) if refusal else (evaluation, "")


def _advance(canary: Deployment, proposal: StepProposal, evaluation: GateEvaluation) -> str:
    """Move the canary to its next step if nothing moved it meanwhile; return "" or why not."""
    version = canary.model_version
    evidence = evidence_of(evaluation)
    if proposal.is_live_switch:
        # Before the lock: loading and scoring is slow, and a refusal's audit event must stay.
        live_switch_health_require(model_version=version, actor=None, evidence=evidence)
    with transaction.atomic():
        queue_lock(canary.queue)
        current = Deployment.objects.select_for_update().get(pk=canary.pk)
        if (current.role, current.traffic_share, current.share_changed_at) != (
            canary.role,
            canary.traffic_share,
            canary.share_changed_at,
        ):
            return f"{version.key} changed while it was evaluated; the next run looks again"
        if PromotionRequest.objects.filter(
            model_version=version, status=PromotionRequest.Status.PENDING
        ).exists():
            return f"a promotion request for {version.key} was filed meanwhile; an admin decides it"
        soaked = (timezone.now() - canary_step_since(canary)).total_seconds() / 60
        rollout_move(
            model_version=version,
            move=transitions.LIVE_SWITCH
            if proposal.is_live_switch
            else transitions.CANARY_SHARE_RAISE,
            actor=None,
            share=None if proposal.is_live_switch else proposal.share,
            promotion=current.promotion,
            evidence=evidence,
            reason=f"auto-advance: {soaked:.0f} minutes at {share_text(canary.traffic_share)}, "
            f"audit-sample evaluation {evaluation.pk} passes",
        )
    return ""


def canary_advance(*, canary: Deployment, now: datetime) -> CanaryAdvance:
    """Advance one canary a step if its policy allows it and its audit sample passes."""
    version = canary.model_version
    share = canary.traffic_share

    def result(
        outcome: str, detail: str, evaluation: GateEvaluation | None = None, after: float = share
    ) -> CanaryAdvance:
        return CanaryAdvance(
            queue=canary.queue.slug,
            model=version.key,
            outcome=outcome,
            detail=detail,
            share_before=share,
            share_after=after,
            evaluation=evaluation.pk if evaluation is not None else None,
        )

    policy = gate_policy_current(queue=canary.queue)
    if not policy.auto_advance:
        return result(OFF, f"auto-advance is off in gate policy version {policy.version}")
    soak_end = canary_step_since(canary) + timedelta(minutes=policy.soak_minutes)
    if now < soak_end:
        return result(WAITING, f"soaking at {share_text(share)} until {_utc(soak_end)}")
    if RolloutControl.objects.filter(queue=canary.queue, kill_switch=True).exists():
        return result(WAITING, "the kill switch is on: the canary decides nothing meanwhile")
    pending = PromotionRequest.objects.filter(
        model_version=version, status=PromotionRequest.Status.PENDING
    ).first()
    if pending is not None:
        return result(
            WAITING, f"promotion request {pending.pk} is pending; the admin deciding it moves it"
        )
    proposal = step_next(steps=policy_steps(policy), role=transitions.CANARY, share=share)
    if proposal is None:
        return result(WAITING, f"{share_text(share)} is past the ladder's last canary step")
    evaluation, why = _evaluation(canary, now)
    if evaluation is None:
        return result(HELD, f"stays at {share_text(share)}: {why}")
    try:
        why = _advance(canary, proposal, evaluation)
    except LiveSwitchRefused as exc:
        return result(REFUSED, str(exc), evaluation)
    except transitions.TransitionRefused as exc:
        return result(WAITING, str(exc), evaluation)
    if why:
        return result(WAITING, why, evaluation)
    step = "live" if proposal.is_live_switch else share_text(proposal.share)
    detail = f"advanced to {step} on audit-sample evaluation {evaluation.pk}"
    return result(ADVANCED, detail, evaluation, after=proposal.share)


def canary_advance_run(*, now: datetime | None = None) -> list[CanaryAdvance]:
    """Look at every canary once: advance those whose policy allows it and whose sample passes.

    One canary's failure is logged and reported, and never stops the others.
    """
    now = now or timezone.now()
    canaries = (
        Deployment.objects.filter(role=Deployment.Role.CANARY)
        .select_related("queue", "model_version__queue", "promotion")
        .order_by("queue_id")
    )
    results = []
    for canary in canaries:
        try:
            outcome = canary_advance(canary=canary, now=now)
        except Exception as exc:
            log.exception("canary advance failed for %s", canary.model_version.key)
            outcome = CanaryAdvance(
                queue=canary.queue.slug,
                model=canary.model_version.key,
                outcome=ERROR,
                detail=f"{type(exc).__name__}: {exc}",
                share_before=canary.traffic_share,
                share_after=canary.traffic_share,
            )
        log.info(
            "canary advance queue=%s model=%s outcome=%s share=%s->%s evaluation=%s: %s",
            outcome.queue,
            outcome.model,
            outcome.outcome,
            outcome.share_before,
            outcome.share_after,
            outcome.evaluation,
            outcome.detail,
        )
        results.append(outcome)
    return results
