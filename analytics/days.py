"""UTC days: rollups and report ranges count whole UTC days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

from django.utils import timezone


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """Return the UTC start and end of a day (rollup days are UTC days)."""
    start = datetime.combine(day, clock.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def utc_today() -> date:
    """Return today's UTC date: the open day, never rolled up."""
    return timezone.now().astimezone(UTC).date()
