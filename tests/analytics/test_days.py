"""UTC days and the bounds on the days a request may ask for."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from analytics.days import EARLIEST_DAY, day_bounds, day_check, day_range_check

pytestmark = pytest.mark.security

TODAY = date(2026, 6, 15)


def test_a_day_runs_from_its_utc_midnight_to_the_next():
    assert day_bounds(date(2026, 1, 31)) == (
        datetime(2026, 1, 31, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    )


@pytest.mark.parametrize("day", [date.min, date.max, date(9999, 12, 30)])
def test_the_first_and_last_representable_days_have_bounds_without_an_overflow(day):
    start, end = day_bounds(day)
    assert start.date() == day
    assert start < end


@pytest.mark.parametrize(
    ("day", "message"),
    [
        (date(1, 1, 1), "since must be 2000-01-01 or later, got 0001-01-01"),
        (date(1999, 12, 31), "since must be 2000-01-01 or later"),
        (date.max, "since must be 2026-06-16 or earlier, got 9999-12-31"),
        (TODAY + timedelta(days=2), "since must be 2026-06-16 or earlier"),
    ],
)
def test_a_day_outside_2000_to_tomorrow_is_refused_naming_the_bound(day, message):
    with pytest.raises(ValueError, match=message):
        day_check(day, name="since", today=TODAY)


@pytest.mark.parametrize("day", [EARLIEST_DAY, TODAY, TODAY + timedelta(days=1)])
def test_a_day_from_2000_to_tomorrow_is_accepted(day):
    day_check(day, name="until", today=TODAY)


def test_a_range_of_exactly_the_maximum_is_accepted_and_one_day_more_is_refused(settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MAX_RANGE_DAYS": 10}
    day_range_check(since=TODAY - timedelta(days=9), until=TODAY, today=TODAY)
    with pytest.raises(ValueError, match="covers 11 days; at most 10 days"):
        day_range_check(since=TODAY - timedelta(days=10), until=TODAY, today=TODAY)


def test_the_default_maximum_is_400_days():
    day_range_check(since=TODAY - timedelta(days=399), until=TODAY, today=TODAY)
    with pytest.raises(ValueError, match="at most 400 days"):
        day_range_check(since=TODAY - timedelta(days=400), until=TODAY, today=TODAY)


def test_a_reversed_range_is_refused():
    with pytest.raises(ValueError, match=r"since \(2026-06-15\) is after until \(2026-06-14\)"):
        day_range_check(since=TODAY, until=TODAY - timedelta(days=1), today=TODAY)
