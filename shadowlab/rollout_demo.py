"""Drive the demo's rollout: the lead evaluates and requests the next step, the admin approves.

`manage.py simulate --promote` uses it so the demo shows the whole path: shadow, gate,
request, approval, canary steps, live; `--degrade-at` then flips the inputs mid-stream so
the rollback monitor takes the model off again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import User

from analytics.gate.evaluation import gate_evaluation_run
from analytics.gate.policy import gate_policy_current
from deployments.models import Deployment, ModelVersion, PromotionRequest
from deployments.promotions import promotion_approve, promotion_request_create
from deployments.rollout import version_role


class PromotionNotPossible(ValueError):
    """The demo cannot promote the version now; the message says why."""


@dataclass(frozen=True)
class NextStep:
    target: str  # canary or live
    share: float


def next_step(*, steps: list[float], role: str, share: float) -> NextStep | None:
    """Return the step after the version's current one, None when it is live already."""
    if role == Deployment.Role.LIVE:
        return None
    current = share if role == Deployment.Role.CANARY else 0.0
    for step in steps:
        if step > current:
            if step >= 1.0:
                return NextStep(PromotionRequest.Target.LIVE, 1.0)
            return NextStep(PromotionRequest.Target.CANARY, step)
    return NextStep(PromotionRequest.Target.LIVE, 1.0)


def rollout_demo_promote(
    *, model_version: ModelVersion, lead: User, admin: User, log: Callable[[str], None]
) -> Deployment:
    """Evaluate the gate as the lead, request the next step, approve it as the admin.

    Raise PromotionNotPossible when the evaluation does not pass or the version is live.
    """
    queue = model_version.queue
    deployment = Deployment.objects.filter(queue=queue, model_version=model_version).first()
    role = version_role(model_version)
    step = next_step(
        steps=list(gate_policy_current(queue=queue).canary_steps),
        role=role,
        share=deployment.traffic_share if deployment else 0.0,
    )
    if step is None:
        raise PromotionNotPossible(f"{model_version.key} is live already")
    evaluation = gate_evaluation_run(model_version=model_version, actor=lead)
    if evaluation.verdict != "pass":
        failing = [
            criterion["name"]
            for criterion in evaluation.snapshot.get("criteria", [])
            if criterion.get("verdict") not in ("pass", "off")
        ]
        raise PromotionNotPossible(
            f"the gate says {evaluation.verdict} for {model_version.key} "
            f"(gate evaluation {evaluation.pk}; not passed: {', '.join(failing) or 'none'}); "
            "simulate more judged items first"
        )
    log(f"{lead.username} evaluated the gate of {model_version.key}: pass ({evaluation.pk})")
    request = promotion_request_create(
        queue=queue,
        model_version=model_version,
        target=step.target,
        share=step.share if step.target == PromotionRequest.Target.CANARY else None,
        evaluation=evaluation,
        actor=lead,
        note="demo: the gate passes",
    )
    where = f"canary at {step.share:.0%}" if step.target == "canary" else "live"
    log(f"{lead.username} requested {model_version.key} as {where} (request {request.pk})")
    promotion_approve(request=request, actor=admin, comment="demo: second pair of eyes")
    log(f"{admin.username} approved request {request.pk}: {model_version.key} is {where}")
    return Deployment.objects.get(queue=queue, model_version=model_version)
