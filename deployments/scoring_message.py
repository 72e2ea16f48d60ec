"""The score_items message format, shared by the sender and the worker (no Django import)."""

from __future__ import annotations

import base64

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
