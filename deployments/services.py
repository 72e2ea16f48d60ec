"""Put model versions in shadow and retire them; each change goes through the rollout table."""

from __future__ import annotations

from django.contrib.auth.models import User

from deployments import transitions
from deployments.models import Deployment, ModelVersion
from deployments.rollout import rollout_move

# The admin action and deploy_shadow catch this name; a refused move is one.
DeploymentRefused = transitions.TransitionRefused


def deployment_shadow_start(*, model_version: ModelVersion, actor: User | None) -> Deployment:
    """Put a model version in shadow on its queue: it scores every new item, decides none.

    A version already in shadow is returned unchanged, so commands can run again.
    """
    return rollout_move(
        model_version=model_version,
        move=transitions.SHADOW_START,
        actor=actor,
        repeat_ok=True,
    )


def deployment_retire(*, deployment: Deployment, actor: User | None) -> Deployment:
    """Stop a shadow or standby model version; its predictions stay for the record."""
    return rollout_move(
        model_version=deployment.model_version,
        move=transitions.RETIRE,
        actor=actor,
        repeat_ok=True,
    )
