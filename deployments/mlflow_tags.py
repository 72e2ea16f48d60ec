"""Write a model version's gate verdict and rollout state back to its MLflow model version.

Only versions registered with --tag-back (see deployments.mlflow_source) are written. The
write happens on a worker after the change is committed, so a slow or absent MLflow never
holds up a gate evaluation or a rollout move; the tags always carry the state at the time
of the write, so a late or repeated write leaves the latest state, never an older one.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import transaction
from django.utils import timezone

from analytics.models import GateEvaluation
from deployments.mlflow_source import (
    MlflowSourceError,
    mlflow_client,
    tracking_uri_get,
    uri_without_credentials,
)
from deployments.models import Deployment, ModelVersion

logger = logging.getLogger(__name__)

TAG_PREFIX = "shadowlab."
NOT_DEPLOYED = "not_deployed"
NOT_EVALUATED = "not_evaluated"


class MlflowUnreachable(Exception):
    """MLflow did not answer; the write is retried."""


def mlflow_tags_enqueue(*, model_version: ModelVersion) -> None:
    """After commit, queue the write of the version's tags if it was registered with --tag-back."""
    if model_version.tags_back_to_mlflow:
        transaction.on_commit(partial(_tags_write_send, model_version.pk))


def _tags_write_send(model_version_id: int) -> None:
    from deployments.tasks import mlflow_tags_write

    try:
        mlflow_tags_write.delay(model_version_id)
    except Exception:
        # Broker down: the next change of the version writes the then current state.
        logger.warning("MLflow tags of model version %d not queued", model_version_id)


def mlflow_tags_state(*, model_version: ModelVersion) -> dict[str, str]:
    """Return the tags that say where the version stands in ShadowLab now."""
    deployment = Deployment.objects.filter(
        queue_id=model_version.queue_id, model_version=model_version
    ).first()
    evaluation = (
        GateEvaluation.objects.filter(model_version=model_version)
        .order_by("-created_at", "-id")
        .first()
    )
    return {
        f"{TAG_PREFIX}queue": model_version.queue.slug,
        f"{TAG_PREFIX}model_version": model_version.key,
        f"{TAG_PREFIX}rollout_state": deployment.role if deployment else NOT_DEPLOYED,
        f"{TAG_PREFIX}traffic_share": f"{deployment.traffic_share:g}" if deployment else "0",
        f"{TAG_PREFIX}gate_verdict": evaluation.verdict if evaluation else NOT_EVALUATED,
        f"{TAG_PREFIX}gate_evaluation": str(evaluation.pk) if evaluation else "",
        f"{TAG_PREFIX}gate_evaluated_at": evaluation.created_at.isoformat() if evaluation else "",
        # Last: MLflow sets one tag per request, so its presence says the write is whole.
        f"{TAG_PREFIX}updated_at": timezone.now().isoformat(),
    }


def mlflow_tags_write(*, model_version_id: int) -> dict[str, str]:
    """Set the version's current ShadowLab state as tags on its MLflow model version.

    Return the tags written (nothing for a version without --tag-back). Raise
    MlflowUnreachable when MLflow does not answer (the task retries); a version MLflow no
    longer has is logged and given up, since retrying cannot bring it back.
    """
    model_version = ModelVersion.objects.select_related("queue").get(pk=model_version_id)
    if not model_version.tags_back_to_mlflow:
        return {}
    source = model_version.mlflow_source
    name, version = str(source.get("model_name", "")), str(source.get("model_version", ""))
    if not name or not version:
        return {}
    try:
        tracking_uri = tracking_uri_get()
    except MlflowSourceError:
        logger.warning("MLFLOW_TRACKING_URI is not set: no tags for %s", model_version.key)
        return {}
    if uri_without_credentials(tracking_uri) != source.get("tracking_uri"):
        # The server the model came from is not the one configured now: do not write to
        # a same-named model somewhere else.
        logger.warning(
            "%s came from %s, MLFLOW_TRACKING_URI is %s: no tags written",
            model_version.key,
            source.get("tracking_uri"),
            uri_without_credentials(tracking_uri),
        )
        return {}
    tags = mlflow_tags_state(model_version=model_version)
    client = mlflow_client(tracking_uri)
    try:
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)
    except Exception as exc:
        code = getattr(exc, "error_code", "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "PERMISSION_DENIED"):
            logger.warning(
                "MLflow refused the tags of %s (%s %s:%s): %s",
                model_version.key,
                code,
                name,
                version,
                " ".join(str(exc).split())[:300],
            )
            return {}
        raise MlflowUnreachable(f"{type(exc).__name__}: {exc}") from exc
    logger.info(
        "MLflow tags of %s written to %s:%s: %s, gate %s",
        model_version.key,
        name,
        version,
        tags[f"{TAG_PREFIX}rollout_state"],
        tags[f"{TAG_PREFIX}gate_verdict"],
    )
    return tags
