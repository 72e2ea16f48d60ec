"""Template filters that show a figure, or a sentence when there is none (never nan)."""

from __future__ import annotations

import math

from django import template

register = template.Library()

NO_DATA = "no data yet"


@register.filter
def figure(value: object, digits: int = 3) -> str:
    """Return a number with this many decimals; "no data yet" for None, nan or infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return NO_DATA
    if not math.isfinite(value):
        return NO_DATA
    return f"{value:.{int(digits)}f}"


@register.filter
def percent(value: object, digits: int = 1) -> str:
    """Return a share as a percentage; "no data yet" for None, nan or infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return NO_DATA
    return f"{100.0 * value:.{int(digits)}f}%"


@register.filter
def known(value: object) -> bool:
    """Return whether value is a finite number (a figure to show, not a missing one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
