"""manage.py rollups_rebuild recomputes a range of closed days, and refuses bad ranges."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from analytics import services
from analytics.models import DailyRollup

from .test_rollups import _setup

pytestmark = pytest.mark.django_db


def test_rebuild_replaces_each_closed_day_once(inspector):
    _, version = _setup([inspector])
    since = services.utc_today() - timedelta(days=3)
    out = StringIO()
    call_command("rollups_rebuild", since=since.isoformat(), stdout=out, stderr=StringIO())
    call_command("rollups_rebuild", since=since.isoformat(), stdout=out, stderr=StringIO())
    days = sorted(DailyRollup.objects.filter(model_version=version).values_list("day", flat=True))
    assert days == [since + timedelta(days=n) for n in range(3)]
    assert "rebuilt 3 rollups (1 versions x 3 days)" in out.getvalue()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"since": "yesterday"}, "must be a date"),
        ({"since": "0001-01-01"}, "at most"),
        ({"since": "2026-01-02", "until": "2026-01-01"}, "must not be after"),
        ({"since": "2020-01-01", "until": "9999-12-31"}, "closed day"),
        ({"since": "2026-01-01", "model": "nobody:1"}, "no model version"),
    ],
)
def test_rebuild_refuses_bad_ranges(inspector, options, message):
    _setup([inspector])
    with pytest.raises(CommandError, match=message):
        call_command("rollups_rebuild", stdout=StringIO(), stderr=StringIO(), **options)
