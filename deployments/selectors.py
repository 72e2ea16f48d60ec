"""Reads of model versions and their deployments."""

from __future__ import annotations

from deployments.models import ModelVersion


def model_version_get_by_key(key: str) -> ModelVersion:
    """Return the model version called "name:version", or raise ModelVersion.DoesNotExist.

    Names may not contain ':' (the registry refuses them), so the first ':' splits the key
    and a version may contain more.
    """
    name, separator, version = (part.strip() for part in key.partition(":"))
    if not separator or not name or not version:
        raise ModelVersion.DoesNotExist(f"'{key}' is not a model key of the form name:version")
    try:
        return ModelVersion.objects.select_related("queue", "parent").get(
            name=name, version=version
        )
    except ModelVersion.DoesNotExist:
        raise ModelVersion.DoesNotExist(f"no model version {name}:{version}") from None
