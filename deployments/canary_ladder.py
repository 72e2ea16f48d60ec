"""Reads of a queue's canary ladder: its steps from the gate policy, a version's next step."""

from __future__ import annotations

from dataclasses import dataclass

from analytics.gate.policy import gate_policy_current
from analytics.models import GatePolicy
from deployments import transitions
from deployments.canary_steps import DEFAULT_STEPS, StepProposal, step_next, steps_clean
from deployments.models import Deployment, ModelVersion
from inspections.models import Queue


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
