"""The one check that a value is a finite real number, shared by the apps (no Django import)."""

from __future__ import annotations

import math
import numbers

NOT_A_NUMBER = "not a number"
NOT_FINITE = "not finite"


def finite_number_problem(value: object) -> str | None:
    """Return why a value is not a finite real number ("not a number", "not finite"), or None.

    A bool is not a number here, although Python counts it as an int: a feature or a figure
    that arrives as true or false is a mistake upstream, not a 1 or a 0.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return NOT_A_NUMBER
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return NOT_FINITE
    return None if finite else NOT_FINITE


def is_finite_number(value: object) -> bool:
    """Return whether a value is a finite real number (and not a bool)."""
    return finite_number_problem(value) is None
