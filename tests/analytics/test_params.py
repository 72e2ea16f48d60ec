"""The report query parameters: dates checked before defaults, pages and filters bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics.days import utc_today
from analytics.params import day_range_parse, disagreements_options_parse

pytestmark = pytest.mark.security


def test_no_dates_give_the_default_days_ending_today():
    since, until = day_range_parse({})
    assert until == utc_today()
    assert (until - since).days + 1 == 30


@pytest.mark.parametrize(
    ("params", "message"),
    [
        # The default range ends on the given day: it is checked before the default starts
        # 29 days earlier, which would be before the first representable day.
        ({"until": "0001-01-01"}, "until must be 2000-01-01 or later, got 0001-01-01"),
        ({"since": "0001-01-01"}, "since must be 2000-01-01 or later"),
        ({"until": "9999-12-31"}, "until must be"),
        ({"since": "2000-01-01"}, "days; at most 400 days"),
        ({"since": "2000-01-01", "until": "2020-01-01"}, "covers 7,306 days"),
        ({"since": "yesterday"}, "since must be an ISO date such as 2026-01-31, got 'yesterday'"),
        ({"until": "2026-02-30"}, "until must be an ISO date"),
        ({"since": "9" * 10_000}, "since must be an ISO date"),
        ({"since": "2026-01-02", "until": "2026-01-01"}, "is after until"),
    ],
)
def test_a_bad_range_is_refused_with_a_clear_message(params, message):
    with pytest.raises(ValueError, match=message) as refused:
        day_range_parse(params)
    assert len(str(refused.value)) < 300


def test_the_maximum_range_follows_the_setting(settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MAX_RANGE_DAYS": 7}
    today = utc_today()
    assert day_range_parse({"since": (today - timedelta(days=6)).isoformat()})[0] == (
        today - timedelta(days=6)
    )
    with pytest.raises(ValueError, match="at most 7 days"):
        day_range_parse({"since": (today - timedelta(days=7)).isoformat()})
    # A default longer than the maximum is cut to it, never refused.
    since, until = day_range_parse({})
    assert (until - since).days + 1 == 7


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"page": "0"}, "page must be a whole number from 1"),
        ({"page": "-3"}, "page must be a whole number from 1"),
        ({"page": "999999999999999999999"}, "page must be a whole number from 1 to 1,000,000"),
        ({"page": "9" * 5000}, "page must be a number"),
        ({"page": "1.5"}, "page must be a number, got '1.5'"),
        ({"page_size": "501"}, "page_size must be from 1 to 500"),
        ({"confidence_min": "nan"}, "confidence_min must be a finite number"),
        ({"confidence_max": "1e999"}, "confidence_max must be a finite number"),
        ({"confidence_max": "2"}, "confidence_max must be a confidence from 0 to 1"),
    ],
)
def test_a_bad_page_or_confidence_is_refused_with_a_clear_message(params, message):
    with pytest.raises(ValueError, match=message):
        disagreements_options_parse(params)
