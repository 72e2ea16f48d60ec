"""Apply rollout moves to a queue's deployments, and set its kill switch; each change is audited."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from deployments import metrics, transitions
from deployments.audit import audit_record
from deployments.mlflow_tags import mlflow_tags_enqueue
from deployments.models import Deployment, ModelVersion, PromotionRequest, RolloutControl
from inspections.models import Queue
from shadowlab import roles

REASON_MAX_CHARS = 500


def deployment_state(deployment: Deployment | None) -> dict[str, Any] | None:
    """Return what the audit log keeps of a deployment: its role, share and promotion."""
    if deployment is None or deployment.pk is None:
        return None
    return {
        "role": deployment.role,
        "traffic_share": deployment.traffic_share,
        "promotion": deployment.promotion_id,
    }


def queue_lock(queue: Queue) -> Queue:
    """Lock the queue's row so rollout changes on one queue happen one at a time.

    Locking the deployments alone would not serialise the first move of a version that
    has no deployment row yet.
    """
    return Queue.objects.select_for_update().get(pk=queue.pk)


def routing_version_bump(queue: Queue) -> int:
    """Move the queue's routing version on, inside the caller's transaction; return it.

    Web processes compare it with the version their routing table was built from and
    rebuild the table when it moved, so a rollout change reaches them without a restart.
    """
    control, _ = RolloutControl.objects.get_or_create(queue=queue)
    RolloutControl.objects.filter(pk=control.pk).update(routing_version=F("routing_version") + 1)
    return control.routing_version + 1


def _deployments(queue: Queue, *, lock: bool) -> dict[str, Deployment]:
    rows = Deployment.objects.filter(queue=queue).select_related("model_version")
    if lock:
        rows = rows.select_for_update(of=("self",))
    return {row.model_version.key: row for row in rows}


def _queue_roles(rows: dict[str, Deployment]) -> transitions.QueueRoles:
    holders = {row.role: row for row in rows.values()}
    canary = holders.get(Deployment.Role.CANARY)
    return transitions.QueueRoles(
        live=holders[Deployment.Role.LIVE].model_version.key
        if Deployment.Role.LIVE in holders
        else None,
        canary=canary.model_version.key if canary else None,
        canary_share=canary.traffic_share if canary else 0.0,
        standby=holders[Deployment.Role.STANDBY].model_version.key
        if Deployment.Role.STANDBY in holders
        else None,
    )


def _plan(
    rows: dict[str, Deployment], model_version: ModelVersion, move: str, share: float | None
) -> tuple[transitions.RoleChange, ...]:
    current = rows.get(model_version.key)
    return transitions.transition_plan(
        move=move,
        role=current.role if current else transitions.NOT_DEPLOYED,
        version=model_version.key,
        queue=model_version.queue.slug,
        share=share,
        current_share=current.traffic_share if current else 0.0,
        roles=_queue_roles(rows),
    )


def version_role(model_version: ModelVersion) -> str:
    """Return the version's role on its queue, or "not_deployed"."""
    deployment = Deployment.objects.filter(
        queue_id=model_version.queue_id, model_version=model_version
    ).first()
    return deployment.role if deployment else transitions.NOT_DEPLOYED


def rollout_move_check(
    *, model_version: ModelVersion, move: str, share: float | None = None
) -> None:
    """Raise TransitionRefused if the move is not legal for the version now; change nothing."""
    _plan(_deployments(model_version.queue, lock=False), model_version, move, share)


def rollout_move(
    *,
    model_version: ModelVersion,
    move: str,
    actor: User | None,
    share: float | None = None,
    promotion: PromotionRequest | None = None,
    evidence: str = "",
    reason: str = "",
    repeat_ok: bool = False,
) -> Deployment:
    """Apply one named move to a version and to the versions it displaces, in one transaction.

    Raise TransitionRefused (nothing changed) if the move is not legal now. With repeat_ok,
    a version already in the move's target role is returned unchanged instead.
    """
    queue = model_version.queue
    with transaction.atomic():
        queue_lock(queue)
        rows = _deployments(queue, lock=True)
        current = rows.get(model_version.key)
        if repeat_ok and current is not None and current.role == transitions.MOVES[move].target:
            return current
        plan = _plan(rows, model_version, move, share)
        now = timezone.now()
        subject: Deployment | None = None
        for change in plan:
            deployment = rows.get(change.version) or Deployment(
                queue=queue, model_version=model_version
            )
            before = deployment_state(deployment)
            if change.after != change.before or deployment.pk is None:
                deployment.started_at = now
            if change.share != deployment.traffic_share or deployment.pk is None:
                deployment.share_changed_at = now
            deployment.role = change.after
            deployment.traffic_share = change.share
            if change.version == model_version.key and change.after in (
                transitions.CANARY,
                transitions.LIVE,
            ):
                deployment.promotion = promotion
            elif change.after in (transitions.SHADOW, transitions.RETIRED):
                # The approval that put it in canary or live no longer speaks for it; a
                # standby keeps its own, so a rollback restores it with its record.
                deployment.promotion = None
            deployment.save()
            after = deployment_state(deployment) or {}
            if reason:
                after["reason"] = reason
            audit_record(
                actor=actor,
                action=f"deployment.{move}",
                subject=deployment,
                before=before,
                after=after,
                queue=queue,
                evidence=evidence,
            )
            mlflow_tags_enqueue(model_version=deployment.model_version)
            if change.version == model_version.key:
                subject = deployment
        routing_version_bump(queue)
    assert subject is not None  # every plan changes its own version
    return subject


def _reason_clean(reason: str, what: str = "a rollback") -> str:
    reason = reason.strip()
    if not reason:
        raise ValueError(f"{what} needs a reason that says why")
    if len(reason) > REASON_MAX_CHARS:
        raise ValueError(f"the reason may be at most {REASON_MAX_CHARS} characters")
    return reason


def rollout_rollback(
    *,
    queue: Queue,
    model_version: ModelVersion,
    actor: User | None,
    reason: str,
    evidence: str = "",
) -> Deployment:
    """Roll a canary or live version back to shadow (a live version's standby goes live again).

    actor None is the system (the automatic rollback); a person needs the admin's right to
    change deployments. Raise PermissionDenied, ValueError (bad reason or queue) or
    TransitionRefused; nothing changes then.
    """
    if actor is not None and not actor.has_perm(roles.DEPLOY_MODELS):
        raise PermissionDenied("rolling a model back needs the admin role")
    reason = _reason_clean(reason)
    if model_version.queue_id != queue.pk:
        raise ValueError(f"{model_version.key} belongs to queue {model_version.queue.slug}")
    deployment = rollout_move(
        model_version=model_version,
        move=transitions.ROLLBACK,
        actor=actor,
        evidence=evidence,
        reason=reason,
    )
    rollbacks = metrics.ROLLBACKS.labels(
        queue.slug, model_version.key, "automatic" if actor is None else "manual"
    )
    transaction.on_commit(rollbacks.inc)
    return deployment


def rollout_retire(
    *, queue: Queue, model_version: ModelVersion, actor: User, reason: str
) -> Deployment:
    """Retire a standby (or shadow) version: it stops scoring and waits for nothing.

    Retiring the standby means a rollback of the live version sends its items to
    inspectors instead. Raise PermissionDenied, ValueError (bad reason or queue) or
    TransitionRefused (a canary or live version is rolled back, not retired); nothing
    changes then.
    """
    if not actor.has_perm(roles.DEPLOY_MODELS):
        raise PermissionDenied("retiring a model needs the admin role")
    reason = _reason_clean(reason, "retiring a model")
    if model_version.queue_id != queue.pk:
        raise ValueError(f"{model_version.key} belongs to queue {model_version.queue.slug}")
    return rollout_move(
        model_version=model_version, move=transitions.RETIRE, actor=actor, reason=reason
    )


def kill_switch_set(*, queue: Queue, on: bool, actor: User) -> RolloutControl:
    """Turn the queue's kill switch on (every item goes to inspectors) or off.

    Raise PermissionDenied unless the actor may flip it. Setting it to where it already is
    changes and records nothing.
    """
    if not actor.has_perm(roles.KILL_SWITCH):
        raise PermissionDenied("the kill switch needs the admin role")
    with transaction.atomic():
        queue_lock(queue)
        control, _ = RolloutControl.objects.select_for_update().get_or_create(queue=queue)
        if control.kill_switch == on:
            return control
        before = {"on": control.kill_switch}
        control.kill_switch = on
        control.changed_by = actor
        control.changed_at = timezone.now()
        control.save()
        routing_version_bump(queue)
        audit_record(
            actor=actor,
            action="kill_switch.set",
            subject=control,
            before=before,
            after={"on": on},
            queue=queue,
        )
    return control
