"""Reads of a queue's canary ladder: its steps, a version's next step, the rollout page's view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from analytics.gate.policy import gate_policy_current
from analytics.models import GateEvaluation, GatePolicy
from deployments import transitions
from deployments.canary_steps import (
    DEFAULT_STEPS,
    StepProposal,
    ladder_text,
    share_text,
    step_index,
    step_next,
    steps_clean,
)
from deployments.models import Decision, Deployment, ModelVersion, PromotionRequest
from inspections.models import Item, Queue


def policy_steps(policy: GatePolicy) -> tuple[float, ...]:
    """Return the policy's canary steps; the default ladder if the stored one is not a ladder.

    Edits are checked (analytics.gate.policy), so only a row written around the service
    can hold something else; the default ladder is then the safe reading.
    """
    try:
        return steps_clean(policy.canary_steps)
    except ValueError:
        return DEFAULT_STEPS


def queue_canary_steps(*, queue: Queue) -> tuple[float, ...]:
    """Return the canary steps of the queue's current gate policy."""
    return policy_steps(gate_policy_current(queue=queue))


@dataclass(frozen=True)
class VersionStep:
    """Where a version stands on its queue's ladder, and the step it would take next."""

    role: str
    share: float
    steps: tuple[float, ...]
    proposal: StepProposal | None


def version_step(*, model_version: ModelVersion) -> VersionStep:
    """Return the version's role and share now and its next step on the queue's ladder."""
    deployment = Deployment.objects.filter(
        queue_id=model_version.queue_id, model_version=model_version
    ).first()
    role = deployment.role if deployment else transitions.NOT_DEPLOYED
    share = deployment.traffic_share if deployment else 0.0
    steps = queue_canary_steps(queue=model_version.queue)
    return VersionStep(
        role=role, share=share, steps=steps, proposal=step_next(steps=steps, role=role, share=share)
    )


LADDER_PASSED, LADDER_CURRENT, LADDER_NEXT, LADDER_AHEAD = "passed", "current", "next", "ahead"


@dataclass(frozen=True)
class LadderStep:
    """One step of the ladder as the rollout page draws it."""

    share: float
    text: str
    state: str  # passed, current, next or ahead, for the queue's canary


@dataclass(frozen=True)
class CanaryLadder:
    """A queue's canary steps, where its canary stands, what it did and what its next step needs.

    decisions counts the canary's Decision rows per outcome since it took its step, a
    bounded aggregate; needs is a list of sentences.
    """

    steps: tuple[LadderStep, ...]
    text: str
    canary: str | None
    share_text: str
    off_ladder: bool
    since: datetime | None
    decisions: dict[str, int]
    decisions_sentence: str
    audit_items: int
    next_step_text: str
    needs: tuple[str, ...]
    latest_audit: GateEvaluation | None
    auto_advance: bool
    policy_version: int


def _utc_text(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _ladder_steps(steps: tuple[float, ...], share: float | None) -> tuple[LadderStep, ...]:
    drawn = []
    following = (
        None if share is None else step_next(steps=steps, role=transitions.CANARY, share=share)
    )
    for index, step in enumerate(steps):
        text = share_text(step) + (" · live" if index == len(steps) - 1 else "")
        if share is None:
            state = LADDER_AHEAD
        elif step_index(steps=(step,), share=share) is not None:
            state = LADDER_CURRENT
        elif step < share:
            state = LADDER_PASSED
        elif following is not None and index == following.index:
            state = LADDER_NEXT
        else:
            state = LADDER_AHEAD
        drawn.append(LadderStep(share=step, text=text, state=state))
    return tuple(drawn)


def _decisions(deployment: Deployment, since: datetime) -> dict[str, int]:
    counts = dict.fromkeys(Decision.Outcome.values, 0)
    rows = (
        Decision.objects.filter(model_version_id=deployment.model_version_id, created_at__gte=since)
        .values("outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts.update({row["outcome"]: int(row["n"]) for row in rows})
    return counts


def _decisions_sentence(key: str, counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return f"No item has reached {key} since it took this step."
    return (
        f"{total:,} items reached {key} since this step: it decided "
        f"{counts[Decision.Outcome.DECIDED]:,}, deferred {counts[Decision.Outcome.DEFERRED]:,} "
        f"to inspectors, and failed on {counts[Decision.Outcome.FAILED]:,} (sent to inspectors)."
    )


def _needs(
    *,
    canary: Deployment,
    proposal: StepProposal,
    policy: GatePolicy,
    live_key: str | None,
    since: datetime,
    now: datetime,
    budget_ms: float,
    latest_audit: GateEvaluation | None,
    audit_items: int,
) -> tuple[str, ...]:
    key = canary.model_version.key
    needs = []
    pending = (
        PromotionRequest.objects.filter(
            model_version=canary.model_version, status=PromotionRequest.Status.PENDING
        )
        .order_by("-requested_at")
        .first()
    )
    if pending is not None:
        needs.append(
            f"Promotion request #{pending.pk} (to {pending.target} at {share_text(pending.share)})"
            " awaits an admin other than its requester."
        )
    else:
        needs.append(
            "An ml_lead or admin requests it on a passing gate evaluation at most "
            f"{policy.max_evaluation_age_hours} hours old, and an admin other than the "
            "requester approves it."
        )
    if proposal.is_live_switch:
        replaced = f"; {live_key} then waits as the standby" if live_key else ""
        needs.append(
            f"It is the blue-green switch: {key} must first pass the health check in the "
            f"process that switches (it loads, answers at batch 1 within the live budget of "
            f"{budget_ms:g} ms at p95, and reproduces its recorded outputs){replaced}."
        )
    if not policy.auto_advance:
        needs.append(
            f"Auto-advance is off in gate policy version {policy.version}: every step is a "
            "request an admin approves."
        )
        return tuple(needs)
    soak_end = since + timedelta(minutes=policy.soak_minutes)
    soak = (
        f"its soak time of {policy.soak_minutes} minutes ends at {_utc_text(soak_end)}"
        if now < soak_end
        else f"its soak time of {policy.soak_minutes} minutes is over"
    )
    needs.append(
        f"Or it advances by itself: {soak}; then a fresh passing evaluation of its audit sample "
        f"since this step ({audit_items:,} audit items so far) moves it."
    )
    if latest_audit is not None:
        needs.append(
            f"Latest audit-sample evaluation: #{latest_audit.pk}, {latest_audit.verdict}, at "
            f"{_utc_text(latest_audit.created_at)}."
        )
    return tuple(needs)


def canary_ladder(*, queue: Queue, now: datetime | None = None) -> CanaryLadder:
    """Return the queue's ladder with its canary, if any, where it stands and what it needs."""
    now = now or timezone.now()
    policy = gate_policy_current(queue=queue)
    steps = policy_steps(policy)
    holders = {
        row.role: row
        for row in Deployment.objects.filter(
            queue=queue, role__in=[Deployment.Role.CANARY, Deployment.Role.LIVE]
        ).select_related("model_version")
    }
    canary = holders.get(Deployment.Role.CANARY)
    live = holders.get(Deployment.Role.LIVE)
    if canary is None:
        return CanaryLadder(
            steps=_ladder_steps(steps, None),
            text=ladder_text(steps),
            canary=None,
            share_text="",
            off_ladder=False,
            since=None,
            decisions={},
            decisions_sentence="",
            audit_items=0,
            next_step_text="",
            needs=(),
            latest_audit=None,
            auto_advance=policy.auto_advance,
            policy_version=policy.version,
        )
    since = canary.share_changed_at or canary.started_at
    proposal = step_next(steps=steps, role=transitions.CANARY, share=canary.traffic_share)
    decisions = _decisions(canary, since)
    audit_items = Item.objects.filter(
        queue=queue,
        audit_sample=True,
        received_at__gte=since,
        decision__model_version_id=canary.model_version_id,
        decision__outcome=Decision.Outcome.DECIDED,
    ).count()
    latest_audit = (
        GateEvaluation.objects.filter(
            model_version_id=canary.model_version_id, sample="audit", created_at__gte=since
        )
        .order_by("-created_at", "-id")
        .first()
    )
    key = canary.model_version.key
    return CanaryLadder(
        steps=_ladder_steps(steps, canary.traffic_share),
        text=ladder_text(steps),
        canary=key,
        share_text=share_text(canary.traffic_share),
        off_ladder=step_index(steps=steps, share=canary.traffic_share) is None,
        since=since,
        decisions=decisions,
        decisions_sentence=_decisions_sentence(key, decisions),
        audit_items=audit_items,
        next_step_text=""
        if proposal is None
        else ("live" if proposal.is_live_switch else share_text(proposal.share)),
        needs=()
        if proposal is None
        else _needs(
            canary=canary,
            proposal=proposal,
            policy=policy,
            live_key=live.model_version.key if live else None,
            since=since,
            now=now,
            budget_ms=float(settings.SHADOWLAB["LIVE_BUDGET_MS"]),
            latest_audit=latest_audit,
            audit_items=audit_items,
        ),
        latest_audit=latest_audit,
        auto_advance=policy.auto_advance,
        policy_version=policy.version,
    )
