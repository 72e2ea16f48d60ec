"""Reads of model versions and their deployments."""

from __future__ import annotations

from deployments.models import ModelVersion
from inspections.models import Queue


def model_key_parse(key: str) -> tuple[str, str]:
    """Return the name and version of a "name:version" key; raise ValueError if it is not one."""
    name, separator, version = (part.strip() for part in key.partition(":"))
    if not separator or not name or not version:
        raise ValueError(f"'{key}' is not a model key of the form name:version")
    return name, version


def queue_model_version_find(*, queue: Queue, key: str) -> ModelVersion | None:
    """Return the queue's model version called "name:version", None if none or not a key."""
    try:
        name, version = model_key_parse(key)
    except ValueError:
        return None
    return (
        ModelVersion.objects.select_related("queue", "parent")
        .filter(queue=queue, name=name, version=version)
        .first()
    )


def model_version_get_by_key(key: str) -> ModelVersion:
    """Return the model version called "name:version", or raise ModelVersion.DoesNotExist.

    Names may not contain ':' (the registry refuses them), so the first ':' splits the key
    and a version may contain more.
    """
    try:
        name, version = model_key_parse(key)
    except ValueError as exc:
        raise ModelVersion.DoesNotExist(str(exc)) from None
    try:
        return ModelVersion.objects.select_related("queue", "parent").get(
            name=name, version=version
        )
    except ModelVersion.DoesNotExist:
        raise ModelVersion.DoesNotExist(f"no model version {name}:{version}") from None
