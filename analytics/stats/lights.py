"""Turn an interval around a figure into a headline light.

Plain Python: no Django import. A light is decided on the interval, never on the
point estimate, so one agreeing judgment cannot turn a figure green, and below a
stated minimum number of observations there is no light at all.
"""

from __future__ import annotations

import math
from typing import Literal

Light = Literal["green", "amber", "red", "insufficient"]

LIGHT_LABELS: dict[Light, str] = {
    "green": "good",
    "amber": "undecided",
    "red": "bad",
    "insufficient": "not enough data",
}


def light_from_bound(
    *, lower: float, upper: float, good: float, bad: float, n: int, min_n: int
) -> Light:
    """Return the light of a figure where higher is better, from its interval and sample size.

    Green when the lower bound clears the good line (the figure is good even at its
    worst plausible value), red when the upper bound is under the bad line (bad even
    at its best), amber in between, "insufficient" below min_n observations or when
    the interval is unknown (nan). For a figure where lower is better (an error rate,
    ECE) pass the negated interval and lines: lower=-upper, upper=-lower, good=-good,
    bad=-bad.
    """
    if bad > good:
        raise ValueError(f"the bad line ({bad}) must not lie above the good line ({good})")
    if min_n < 1:
        raise ValueError(f"min_n must be at least 1, got {min_n}")
    if n < min_n or math.isnan(lower) or math.isnan(upper):
        return "insufficient"
    if lower > upper:
        raise ValueError(f"the lower bound {lower} lies above the upper bound {upper}")
    if lower >= good:
        return "green"
    if upper < bad:
        return "red"
    return "amber"
