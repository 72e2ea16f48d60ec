"""Changes to where model versions are deployed; each one is audited."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from deployments.audit import audit_record
from deployments.models import Deployment, ModelVersion


class DeploymentRefused(ValueError):
    """The deployment change is not allowed; nothing changed."""


def _state(deployment: Deployment | None) -> dict[str, object] | None:
    if deployment is None:
        return None
    return {"role": deployment.role, "traffic_share": deployment.traffic_share}


def deployment_shadow_start(*, model_version: ModelVersion, actor: User | None) -> Deployment:
    """Put a model version in shadow on its queue: it scores every new item, decides none."""
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update()
            .filter(queue=model_version.queue, model_version=model_version)
            .first()
        )
        before = _state(deployment)
        if deployment is not None and deployment.role == Deployment.Role.SHADOW:
            return deployment
        if deployment is not None and deployment.role in (
            Deployment.Role.CANARY,
            Deployment.Role.LIVE,
        ):
            raise DeploymentRefused(
                f"{model_version.key} is {deployment.role} on {model_version.queue.slug}; "
                "roll it back before putting it in shadow"
            )
        if deployment is None:
            deployment = Deployment(queue=model_version.queue, model_version=model_version)
        deployment.role = Deployment.Role.SHADOW
        deployment.traffic_share = 0.0
        deployment.started_at = timezone.now()
        deployment.save()
        audit_record(
            actor=actor,
            action="deployment.shadow_start",
            subject=deployment,
            before=before,
            after=_state(deployment),
        )
    return deployment


def deployment_retire(*, deployment: Deployment, actor: User | None) -> Deployment:
    """Stop a shadow or standby model version; its predictions stay for the record."""
    with transaction.atomic():
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if deployment.role in (Deployment.Role.CANARY, Deployment.Role.LIVE):
            raise DeploymentRefused(f"a {deployment.role} model must be rolled back, not retired")
        if deployment.role == Deployment.Role.RETIRED:
            return deployment
        before = _state(deployment)
        deployment.role = Deployment.Role.RETIRED
        deployment.traffic_share = 0.0
        deployment.save(update_fields=["role", "traffic_share", "updated_at"])
        audit_record(
            actor=actor,
            action="deployment.retire",
            subject=deployment,
            before=before,
            after=_state(deployment),
        )
    return deployment
