"""Rows the rollout tests stand on, made directly: versions without ONNX files, evaluations."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from analytics.models import GateEvaluation, GatePolicy
from deployments.models import Deployment, ModelVersion
from inspections.models import Queue


def version_make(queue: Queue, version: str, *, name: str = "digits-mlp") -> ModelVersion:
    """Return a registered-looking version; the rollout never opens its file."""
    return ModelVersion.objects.create(
        queue=queue,
        name=name,
        version=version,
        onnx_file=f"models/{name}-{version}.onnx",
        sha256="0" * 64,
        size_bytes=1,
        labels=list(queue.labels),
        input_width=queue.input_width,
        input_name="input",
        probability_output="probabilities",
    )


def deployment_make(version: ModelVersion, role: str, share: float | None = None) -> Deployment:
    """Put a version straight into a role, as if earlier moves had put it there."""
    if share is None:
        share = {"live": 1.0, "canary": 0.1}.get(role, 0.0)
    return Deployment.objects.create(
        queue=version.queue,
        model_version=version,
        role=role,
        traffic_share=share,
        started_at=timezone.now() - timedelta(days=1),
    )


def policy_make(queue: Queue, *, max_age_hours: int = 24) -> GatePolicy:
    """Return the queue's next gate policy version."""
    latest = GatePolicy.objects.filter(queue=queue).order_by("-version").first()
    return GatePolicy.objects.create(
        queue=queue,
        version=(latest.version + 1) if latest else 1,
        max_evaluation_age_hours=max_age_hours,
    )


def evaluation_make(
    version: ModelVersion,
    *,
    verdict: str = "pass",
    age: timedelta = timedelta(minutes=5),
    policy: GatePolicy | None = None,
    by: User | None = None,
) -> GateEvaluation:
    """Return a stored evaluation of the version with the verdict and age asked for."""
    policy = policy or GatePolicy.objects.filter(queue=version.queue).first()
    policy = policy or policy_make(version.queue)
    today = timezone.now().date()
    evaluation = GateEvaluation.objects.create(
        queue=version.queue,
        model_version=version,
        policy=policy,
        verdict=verdict,
        since=today - timedelta(days=27),
        until=today,
        snapshot={"verdict": verdict, "criteria": []},
        evaluated_by=by,
    )
    # created_at is auto_now_add; age it afterwards, as the clock would have.
    GateEvaluation.objects.filter(pk=evaluation.pk).update(created_at=timezone.now() - age)
    evaluation.refresh_from_db()
    return evaluation


def rollout_live(version: ModelVersion) -> Deployment:
    """Take a version through shadow and canary to live with the real moves (routing follows)."""
    from deployments import transitions
    from deployments.rollout import rollout_move

    rollout_move(model_version=version, move=transitions.SHADOW_START, actor=None)
    rollout_move(model_version=version, move=transitions.CANARY_START, actor=None, share=0.05)
    return rollout_move(model_version=version, move=transitions.LIVE_SWITCH, actor=None)


def rollout_canary(version: ModelVersion, share: float) -> Deployment:
    """Start a version (put in shadow first if need be) as a canary with the real moves."""
    from deployments import transitions
    from deployments.rollout import rollout_move

    rollout_move(model_version=version, move=transitions.SHADOW_START, actor=None, repeat_ok=True)
    return rollout_move(
        model_version=version, move=transitions.CANARY_START, actor=None, share=share
    )


def queue_quiet(queue: Queue, **fields: float) -> Queue:
    """Switch off a queue's audit sample and double inspection, so a test sees routing alone."""
    for name, value in {"audit_rate": 0.0, "double_inspection_rate": 0.0, **fields}.items():
        setattr(queue, name, value)
    queue.save()
    return queue
