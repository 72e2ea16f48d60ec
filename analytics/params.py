"""Parse the query parameters the report pages and the JSON API share, each checked and bounded."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any

from analytics.days import day_check, day_range_check, utc_today
from analytics.disagreements import DisagreementFilters
from analytics.selectors import report_scope_default_range

# How much of a refused value a message repeats: enough to recognise it, never a 10 kB echo.
SHOWN_CHARS = 40
# Pages past the last show the last one; this bounds the arithmetic before the count is known.
PAGE_MAX = 1_000_000
PAGE_SIZE_MAX = 500


def shown(text: object) -> str:
    """Return a refused value as a message repeats it: quoted and cut to SHOWN_CHARS."""
    value = str(text)
    return repr(value[:SHOWN_CHARS] + "…" if len(value) > SHOWN_CHARS else value)


def day_parse(text: str | None, name: str) -> date | None:
    """Return the ISO date in text, None when empty; raise ValueError on anything else."""
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(
            f"{name} must be an ISO date such as 2026-01-31, got {shown(text)}"
        ) from exc


def number_parse(text: str | None, name: str, kind: type[int] | type[float]) -> Any:
    """Return text as a finite number of this kind, None when empty; raise ValueError otherwise."""
    if text is None or text == "":
        return None
    try:
        value = kind(text)
    except ValueError as exc:  # also an int of more digits than Python converts
        raise ValueError(f"{name} must be a number, got {shown(text)}") from exc
    if kind is float and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {shown(text)}")
    return value


def day_range_parse(params: Mapping[str, Any]) -> tuple[date, date]:
    """Return (since, until) from the parameters, the default range filling what is missing.

    Each given day is checked before the defaults are worked out from it (a default range
    ending on 0001-01-01 would start before the first representable day), and the range
    as a whole after: at most SHADOWLAB["MAX_RANGE_DAYS"] days.
    """
    today = utc_today()
    until = day_parse(params.get("until"), "until")
    since = day_parse(params.get("since"), "since")
    for name, day in (("since", since), ("until", until)):
        if day is not None:
            day_check(day, name=name, today=today)
    default_since, default_until = report_scope_default_range(until=until or today)
    since, until = since or default_since, until or default_until
    day_range_check(since=since, until=until, today=today)
    return since, until


def no_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return no options: the kind takes none beyond its scope."""
    return {}


def agreement_options_parse(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the agreement report's rule; raise ValueError on an unknown one."""
    rule = params.get("rule") or "each"
    if rule not in ("each", "consensus"):
        raise ValueError(f"rule must be 'each' or 'consensus', got {rule!r}")
    return {"rule": rule}


def disagreements_options_parse(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the disagreements page, page size and filters; raise ValueError on bad values."""
    page = number_parse(params.get("page"), "page", int)
    page = 1 if page is None else page
    page_size = number_parse(params.get("page_size"), "page_size", int)
    if not 1 <= page <= PAGE_MAX:
        raise ValueError(f"page must be a whole number from 1 to {PAGE_MAX:,}, got {page}")
    if page_size is not None and not 1 <= page_size <= PAGE_SIZE_MAX:
        raise ValueError(f"page_size must be from 1 to {PAGE_SIZE_MAX}, got {page_size}")
    confidence = {}
    for name in ("confidence_min", "confidence_max"):
        value = number_parse(params.get(name), name, float)
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a confidence from 0 to 1, got {value:g}")
        confidence[name] = value
    filters = DisagreementFilters(
        human_label=params.get("human_label") or None,
        model_label=params.get("model_label") or None,
        inspector=params.get("inspector") or None,
        **confidence,
    )
    return {"filters": filters, "page": page, "page_size": page_size}
