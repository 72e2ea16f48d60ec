"""The smallest and largest value of each feature over a period, which add up over days.

Plain numpy: no Django import. Range-aware bins (``binning.reference_bins_with_range``)
count how many values fall below the reference's minimum or above its maximum; these
say how far out they went, so a page can read "20% above the reference maximum 16,
up to 23.5". Two periods combine by the smaller minimum and the larger maximum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, eq=False)
class FeatureExtremes:
    """Per feature, the smallest and largest value seen; +inf and -inf when none was."""

    minimum: npt.NDArray[np.float64]
    maximum: npt.NDArray[np.float64]

    def __add__(self, other: FeatureExtremes) -> FeatureExtremes:
        if self.minimum.shape != other.minimum.shape:
            raise ValueError("only extremes over the same features combine")
        return FeatureExtremes(
            minimum=np.minimum(self.minimum, other.minimum),
            maximum=np.maximum(self.maximum, other.maximum),
        )


def feature_extremes(values: npt.ArrayLike, features: int) -> FeatureExtremes:
    """Return each column's smallest and largest value of a rows x features matrix."""
    matrix = np.asarray(values, dtype=np.float64).reshape(-1, features)
    if matrix.shape[0] == 0:
        return FeatureExtremes(np.full(features, np.inf), np.full(features, -np.inf))
    return FeatureExtremes(minimum=matrix.min(axis=0), maximum=matrix.max(axis=0))


def feature_extremes_add(
    first: FeatureExtremes | None, second: FeatureExtremes | None
) -> FeatureExtremes | None:
    """Return both periods' extremes together; a period without them adds nothing."""
    if first is None:
        return second
    if second is None:
        return first
    return first + second


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def feature_extremes_to_json(extremes: FeatureExtremes | None) -> list[list[Any]] | None:
    """Return the extremes as [minimum, maximum] per feature, None where no value was seen."""
    if extremes is None:
        return None
    return [
        [_finite_or_none(float(low)), _finite_or_none(float(high))]
        for low, high in zip(extremes.minimum, extremes.maximum, strict=True)
    ]


def feature_extremes_from_json(data: list[list[Any]] | None) -> FeatureExtremes | None:
    """Return the extremes ``feature_extremes_to_json`` stored."""
    if data is None:
        return None
    return FeatureExtremes(
        minimum=np.array([np.inf if low is None else low for low, _ in data], np.float64),
        maximum=np.array([-np.inf if high is None else high for _, high in data], np.float64),
    )
