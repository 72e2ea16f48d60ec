"""Read the audit log: filters checked and capped, a page newest first, a capped CSV stream."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from analytics.days import day_bounds, day_check, day_range_check, utc_today
from deployments.models import AuditEvent
from inspections.models import Queue
from shadowlab.csv_cells import csv_lines

PAGE_SIZE_DEFAULT = 50
PAGE_SIZE_MAX = 200
PAGE_MAX = 10_000
EXPORT_MAX_ROWS = 100_000
ACTIONS_LISTED_MAX = 200
COMPACT_MAX_CHARS = 200

_ACTION = re.compile(r"^[a-z0-9_.]{1,60}$")
_USERNAME = re.compile(r"^[\w.@+-]{1,150}$")
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")

EXPORT_HEADER = [
    "time",
    "actor",
    "action",
    "queue",
    "subject_type",
    "subject_id",
    "subject",
    "before",
    "after",
    "evidence",
]


@dataclass(frozen=True)
class AuditFilters:
    queue: Queue | None = None
    action: str = ""
    actor: str = ""
    since: date | None = None
    until: date | None = None

    def query(self) -> dict[str, str]:
        """Return the filters as query parameters, leaving out those not set."""
        params = {
            "queue": self.queue.slug if self.queue else "",
            "action": self.action,
            "actor": self.actor,
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
        }
        return {name: value for name, value in params.items() if value}


def _day(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name} must be a date such as 2026-01-31, got {text[:40]!r}") from None


def audit_filters_parse(params: Mapping[str, Any]) -> AuditFilters:
    """Return the filters in the query parameters; raise ValueError naming a bad one."""
    slug = (params.get("queue") or "").strip()
    queue = None
    if slug:
        queue = Queue.objects.filter(slug=slug).first() if _SLUG.match(slug) else None
        if queue is None:
            raise ValueError(f"there is no queue {slug[:50]!r}")
    action = (params.get("action") or "").strip()
    if action and not _ACTION.match(action):
        raise ValueError(
            "action must be an audit action such as promotion.approve (lower-case letters, "
            "digits, '_' and '.', at most 60)"
        )
    actor = (params.get("actor") or "").strip()
    if actor and not _USERNAME.match(actor):
        raise ValueError("actor must be a user name (letters, digits and @.+-_, at most 150)")
    since = _day((params.get("since") or "").strip(), "since")
    until = _day((params.get("until") or "").strip(), "until")
    # Either end may be left open (the page and the export are capped by rows); a range
    # given in full is held to the same bounds as a report's.
    today = utc_today()
    for name, day in (("since", since), ("until", until)):
        if day is not None:
            day_check(day, name=name, today=today)
    if since and until:
        day_range_check(since=since, until=until, today=today)
    return AuditFilters(queue=queue, action=action, actor=actor, since=since, until=until)


def page_parse(params: Mapping[str, Any]) -> tuple[int, int]:
    """Return (page, page_size) from the parameters; raise ValueError when out of range."""
    values = []
    bounds = (("page", 1, PAGE_MAX), ("page_size", PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX))
    for name, default, highest in bounds:
        text = (params.get(name) or "").strip()
        try:
            value = int(text) if text else default
        except ValueError:
            raise ValueError(f"{name} must be a whole number, got {text[:20]!r}") from None
        if not 1 <= value <= highest:
            raise ValueError(f"{name} must be between 1 and {highest:,}")
        values.append(value)
    return values[0], values[1]


def audit_events(filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Return the events matching the filters, newest first."""
    events = AuditEvent.objects.select_related("queue").order_by("-created_at", "-id")
    if filters.queue is not None:
        events = events.filter(queue=filters.queue)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.actor:
        events = events.filter(actor_name=filters.actor)
    if filters.since:
        events = events.filter(created_at__gte=day_bounds(filters.since)[0])
    if filters.until:
        events = events.filter(created_at__lt=day_bounds(filters.until)[1])
    return events


def audit_page(filters: AuditFilters, *, page: int, page_size: int) -> Page[AuditEvent]:
    """Return one page of matching events; a page past the end shows the last one."""
    paginator = Paginator(audit_events(filters), page_size)
    return paginator.page(min(page, paginator.num_pages))


def audit_actions() -> list[str]:
    """Return the actions recorded so far, for the filter's choices."""
    actions = AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct()
    return list(actions[:ACTIONS_LISTED_MAX])


def compact(value: object) -> str:
    """Return a before or after state as short JSON, cut to a readable length."""
    if value is None:
        return ""
    text = json.dumps(value, separators=(", ", ": "), sort_keys=True, default=str)
    return text if len(text) <= COMPACT_MAX_CHARS else text[: COMPACT_MAX_CHARS - 1] + "…"


def _export_row(event: AuditEvent) -> list[object]:
    return [
        event.created_at.isoformat(),
        event.actor_name,
        event.action,
        event.queue.slug if event.queue else "",
        event.subject_type,
        event.subject_id,
        event.subject,
        "" if event.before is None else json.dumps(event.before, sort_keys=True, default=str),
        "" if event.after is None else json.dumps(event.after, sort_keys=True, default=str),
        event.evidence,
    ]


def export_capped_sentence(cap: int) -> str:
    """Return what the export and the page say when more events match than the export holds."""
    return (
        f"The export stops at the newest {cap:,} events; narrow the filters (for example the "
        "dates) to export the rest."
    )


def audit_csv_lines(filters: AuditFilters, *, cap: int = EXPORT_MAX_ROWS) -> Iterator[str]:
    """Yield the CSV of the matching events, newest first, header first, at most cap rows.

    When more events match, the last line is a sentence saying the export was cut.
    """
    return csv_lines(_export_rows(filters, cap=cap))


def _export_rows(filters: AuditFilters, *, cap: int) -> Iterator[Sequence[object]]:
    yield EXPORT_HEADER
    # One row past the cap is read only to know that the export was cut.
    for written, event in enumerate(audit_events(filters)[: cap + 1].iterator(chunk_size=2000)):
        if written == cap:
            yield [export_capped_sentence(cap)]
            return
        yield _export_row(event)
