"""The score_items message format, shared by the sender and the worker (no Django import)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import numpy as np


def features_pack(rows: list[list[float]]) -> str:
    """Encode a feature matrix for a message: base64 of little-endian float32, row after row.

    The model reads float32 anyway, and decoding this costs a fraction of a JSON list of
    numbers (which was the largest single cost of a worker batch).
    """
    return base64.b64encode(np.asarray(rows, dtype="<f4").tobytes()).decode("ascii")


def features_unpack(packed: str, width: int) -> np.ndarray:
    """Decode a feature matrix packed by features_pack into rows of the given width."""
    return np.frombuffer(base64.b64decode(packed, validate=True), dtype="<f4").reshape(-1, width)


def message_batch(
    item_ids: list[int], features: str, received: list[float], width: int
) -> tuple[list[int], np.ndarray, dict[int, datetime]] | None:
    """Return the batch a message carried, or None if it does not form a clean matrix."""
    try:
        matrix = features_unpack(features, width)
    except (ValueError, TypeError):
        return None
    if (
        matrix.shape != (len(item_ids), width)
        or len(received) != len(item_ids)
        or not np.isfinite(matrix).all()
    ):
        return None
    arrival = {
        item_id: datetime.fromtimestamp(epoch, tz=UTC)
        for item_id, epoch in zip(item_ids, received, strict=True)
    }
    return item_ids, matrix, arrival
