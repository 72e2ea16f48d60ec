"""Check an item's feature vector before anything is stored (no Django import)."""

from __future__ import annotations

import math
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
    fast = _plain_finite(features)
    if fast is not None:
        return fast
    values: list[float] = []
    for index, value in enumerate(features):
        problem = finite_number_problem(value)
        if problem == NOT_A_NUMBER:
            raise FeatureError(
                f"features[{index}] must be a number, got {type(value).__name__} {value!r:.40}"
            )
        if problem:
            raise FeatureError(f"features[{index}] must be finite, got {_shown(value)}")
        values.append(float(cast(SupportsFloat, value)))
    return values


def _shown(value: object) -> str:
    """Return a refused value as a message shows it: short, and never a huge int in full."""
    if isinstance(value, int) and abs(value) > 10**308:
        # str() of an int past 4,300 digits raises; its bit length tells its size.
        digits = int(abs(value).bit_length() * math.log10(2)) + 1
        return f"an integer of about {digits:,} digits, beyond the largest float (1.8e308)"
    return f"{value!s:.40}"


def _plain_finite(features: Sequence[object]) -> list[float] | None:
    """Return the features as floats if all are finite plain floats or ints, else None.

    The common case, checked without the per-value type dispatch below: batch intake
    validates tens of thousands of values per request. Anything else (bool, str, an int too
    large for a float, NaN) takes the slow path, which names the first problem.
    """
    if not all(type(value) is float or type(value) is int for value in features):
        return None
    try:
        values = [float(value) for value in features]  # type: ignore[arg-type]
    except OverflowError:
        return None
    return values if all(map(math.isfinite, values)) else None
