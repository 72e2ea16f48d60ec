"""Check an item's feature vector before anything is stored (no Django import)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence


class FeatureError(ValueError):
    """The features cannot be accepted; the message says exactly why."""


def features_validate(features: object, *, width: int) -> list[float]:
    """Return the features as floats, or raise FeatureError naming the first problem."""
    if isinstance(features, (str, bytes)) or not isinstance(features, Sequence):
        raise FeatureError(f"features must be a list of {width} numbers")
    if len(features) != width:
        raise FeatureError(f"features must have {width} values, got {len(features)}")
    values: list[float] = []
    for index, value in enumerate(features):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise FeatureError(
                f"features[{index}] must be a number, got {type(value).__name__} {value!r:.40}"
            )
        number = float(value)
        if not math.isfinite(number):
            raise FeatureError(f"features[{index}] must be finite, got {number}")
        values.append(number)
    return values
