"""Real versions for the live switch: registered ONNX files, outputs the worker recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.contrib.auth.models import User
from django.utils import timezone

from deployments.models import ModelVersion
from deployments.registry import model_version_register
from deployments.scoring import predictions_score
from inspections.models import Item, Queue


def live_version_register(
    queue: Queue, onnx_path: Path, reference: np.ndarray, version: str, by: User
) -> ModelVersion:
    """Register the digits model file as another version of the queue, with its reference rows."""
    return model_version_register(
        queue=queue,
        name="digits-mlp",
        version=version,
        onnx_path=onnx_path,
        reference=reference,
        created_by=by,
    )


def predictions_record(version: ModelVersion, rows: np.ndarray, *, prefix: str) -> list[Item]:
    """Store items with these features and let the shadow worker's code score them."""
    now = timezone.now()
    items = Item.objects.bulk_create(
        Item(
            queue=version.queue,
            external_id=f"{prefix}-{k}",
            features=[float(value) for value in row],
            received_at=now,
        )
        for k, row in enumerate(rows)
    )
    predictions_score(model_version_id=version.pk, item_ids=[item.pk for item in items])
    return items
