"""UTC days: rollups and report ranges count whole UTC days; user-given days are bounded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from datetime import time as clock

from django.conf import settings
from django.utils import timezone

# No item predates the product: a day before this is a typo, not a question.
EARLIEST_DAY = date(2000, 1, 1)
# Days after today (UTC) a range may still name: a user east of UTC is a day ahead.
DAYS_AHEAD = 1
MAX_RANGE_DAYS_DEFAULT = 400
# The end of the last representable day: day_bounds(date.max) ends here, not in an overflow.
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """Return the UTC start and end of a day (rollup days are UTC days)."""
    start = datetime.combine(day, clock.min, tzinfo=UTC)
    if day == date.max:
        return start, _END_OF_TIME
    return start, start + timedelta(days=1)


def utc_today() -> date:
    """Return today's UTC date: the open day, never rolled up."""
    return timezone.now().astimezone(UTC).date()


def max_range_days() -> int:
    """Return the most days one request may cover (SHADOWLAB["MAX_RANGE_DAYS"])."""
    return int(settings.SHADOWLAB.get("MAX_RANGE_DAYS", MAX_RANGE_DAYS_DEFAULT))


def day_check(day: date, *, name: str, today: date | None = None) -> None:
    """Raise ValueError, naming the parameter, when a day is before 2000 or after tomorrow."""
    latest = (today or utc_today()) + timedelta(days=DAYS_AHEAD)
    if day < EARLIEST_DAY:
        raise ValueError(f"{name} must be {EARLIEST_DAY.isoformat()} or later, got {day}")
    if day > latest:
        raise ValueError(f"{name} must be {latest.isoformat()} or earlier, got {day}")


def day_range_check(*, since: date, until: date, today: date | None = None) -> None:
    """Raise ValueError when a range is out of bounds, reversed or longer than allowed."""
    day_check(since, name="since", today=today)
    day_check(until, name="until", today=today)
    if since > until:
        raise ValueError(f"since ({since}) is after until ({until})")
    days = (until - since).days + 1
    longest = max_range_days()
    if days > longest:
        raise ValueError(
            f"the range from {since} to {until} covers {days:,} days; at most {longest:,} "
            "days may be asked for at once: narrow since and until"
        )
