"""Decide a headline's traffic light from an interval, never from a point estimate.

Plain Python: no Django import. A light is green only when the whole interval clears
the good line and red only when the whole interval sits under the bad line, so one
lucky judgment cannot turn a figure green; below a minimum sample there is no light.
"""

from __future__ import annotations

import math
from typing import Literal

Light = Literal["green", "amber", "red", "insufficient"]


def light_from_bound(
    *, lower: float, upper: float, good: float, bad: float, n: int, min_n: int
) -> Light:
    """Return the light of a higher-is-better figure from its interval and sample size.

    "insufficient" below min_n items (or with an undefined bound), "green" when the
    lower bound reaches the good line, "red" when the upper bound is under the bad
    line, "amber" otherwise. For a lower-is-better figure (an error), pass the
    negated bounds and lines.
    """
    if bad > good:
        raise ValueError(f"the bad line ({bad}) must not lie above the good line ({good})")
    if min_n < 1:
        raise ValueError(f"min_n must be at least 1, got {min_n}")
    if n < min_n or math.isnan(lower) or math.isnan(upper):
        return "insufficient"
    if lower > upper:
        raise ValueError(f"the lower bound ({lower}) lies above the upper one ({upper})")
    if lower >= good:
        return "green"
    if upper < bad:
        return "red"
    return "amber"
