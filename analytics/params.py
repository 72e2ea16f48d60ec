"""Parse the query parameters the report pages and the JSON API share (no Django import)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from analytics.disagreements import DisagreementFilters
from analytics.selectors import report_scope_default_range


def day_parse(text: str | None, name: str) -> date | None:
    """Return the ISO date in text, None when empty; raise ValueError on anything else."""
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{name} must be an ISO date such as 2026-01-31, got {text!r}") from exc


def number_parse(text: str | None, name: str, kind: type[int] | type[float]) -> Any:
    """Return text as a number of this kind, None when empty; raise ValueError otherwise."""
    if text is None or text == "":
        return None
    try:
        return kind(text)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {text!r}") from exc


def day_range_parse(params: Mapping[str, Any]) -> tuple[date, date]:
    """Return (since, until) from the parameters, the default range filling what is missing."""
    until = day_parse(params.get("until"), "until")
    since = day_parse(params.get("since"), "since")
    default_since, default_until = report_scope_default_range(until=until)
    since, until = since or default_since, until or default_until
    if since > until:
        raise ValueError(f"since ({since}) is after until ({until})")
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
    if page < 1 or (page_size is not None and not 1 <= page_size <= 500):
        raise ValueError("page must be at least 1 and page_size between 1 and 500")
    filters = DisagreementFilters(
        human_label=params.get("human_label") or None,
        model_label=params.get("model_label") or None,
        confidence_min=number_parse(params.get("confidence_min"), "confidence_min", float),
        confidence_max=number_parse(params.get("confidence_max"), "confidence_max", float),
        inspector=params.get("inspector") or None,
    )
    return {"filters": filters, "page": page, "page_size": page_size}
