"""Check an item's feature vector before anything is stored (no Django import)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import SupportsFloat, cast

from shadowlab.finite import NOT_A_NUMBER, finite_number_problem


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
        problem = finite_number_problem(value)
        if problem == NOT_A_NUMBER:
            raise FeatureError(
                f"features[{index}] must be a number, got {type(value).__name__} {value!r:.40}"
            )
        if problem:
            raise FeatureError(f"features[{index}] must be finite, got {value!s:.40}")
        values.append(float(cast(SupportsFloat, value)))
    return values
