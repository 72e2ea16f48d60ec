"""Drive the demo's rollout: the lead evaluates and requests the next step, the admin approves.

`manage.py simulate --promote` uses it so the demo shows the whole path: shadow, gate,
request, approval, canary steps, live; `--degrade-at` then flips the inputs mid-stream so
the rollback monitor takes the model off again.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth.models import User

from analytics.gate.evaluation import gate_evaluation_run
from analytics.gate.policy import gate_policy_current
from deployments.canary_steps import step_next
from deployments.models import Deployment, ModelVersion, PromotionRequest
from deployments.promotions import promotion_approve, promotion_request_create
from deployments.rollout import version_role


class PromotionNotPossible(ValueError):
    """The demo cannot promote the version now; the message says why."""


def rollout_demo_promote(
    *, model_version: ModelVersion, lead: User, admin: User, log: Callable[[str], None]
) -> Deployment:
    """Evaluate the gate as the lead, request the next step, approve it as the admin.

    Raise PromotionNotPossible when the evaluation does not pass or the version is live.
    """
    queue = model_version.queue
    deployment = Deployment.objects.filter(queue=queue, model_version=model_version).first()
    role = version_role(model_version)
    step = step_next(
        steps=tuple(gate_policy_current(queue=queue).canary_steps),
        role=role,
        share=deployment.traffic_share if deployment else 0.0,
    )
    if step is None:
        raise PromotionNotPossible(
            f"{model_version.key} is {role.replace('_', ' ')} on {queue.slug}: it has no next "
            "step (a version is promoted from shadow or canary)"
        )
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
