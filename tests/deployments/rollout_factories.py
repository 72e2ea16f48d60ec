"""Rows the rollout tests stand on, made directly: versions without ONNX files, evaluations."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from analytics.models import GateEvaluation, GatePolicy
from deployments.models import Decision, Deployment, ModelVersion
from inspections.models import Item, Judgment, Queue


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


def auto_advance_policy_make(queue: Queue, **fields: object) -> GatePolicy:
    """Return a next policy version with auto-advance on and a gate a small sample can pass.

    At most 100 judged items, no per-label minimum; recall and drift are switched off, as a
    version made by version_make has no reference profile.
    """
    policy = policy_make(queue)
    values = {
        "auto_advance": True,
        "soak_minutes": 60,
        "min_judged_items": 100,
        "min_per_label": None,
        "recall_floor": None,
        "psi_major": None,
        "drifted_share_max": None,
        **fields,
    }
    for name, value in values.items():
        setattr(policy, name, value)
    policy.save()
    return policy


def audit_sample_make(
    version: ModelVersion,
    *,
    n: int,
    received_at: datetime,
    wrong: float = 0.0,
    prefix: str = "audit",
    inspector: User | None = None,
) -> list[Item]:
    """Add n audit items the version decided at intake, each judged once by an inspector.

    The inspector disagrees with the model on the first share `wrong` of them.
    """
    inspector = inspector or User.objects.get_or_create(username=f"{prefix}-inspector")[0]
    labels = [str(label) for label in version.queue.labels]
    items = []
    for k in range(n):
        label = labels[k % len(labels)]
        item = Item.objects.create(
            queue=version.queue,
            external_id=f"{prefix}-{k}",
            features=[0.0] * version.queue.input_width,
            received_at=received_at,
            route=Item.Route.MODEL,
            audit_sample=True,
            judgments_needed=1,
            judgment_count=1,
            human_status=Item.HumanStatus.COMPLETE,
        )
        Decision.objects.create(
            item=item,
            model_version=version,
            role=Decision.Role.CANARY,
            outcome=Decision.Outcome.DECIDED,
            label=label,
            confidence=0.97,
            latency_ms=2.0,
            created_at=received_at,
        )
        human = labels[(k + 1) % len(labels)] if k < wrong * n else label
        Judgment.objects.create(item=item, inspector=inspector, label=human, seconds_spent=2.0)
        items.append(item)
    return items


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
