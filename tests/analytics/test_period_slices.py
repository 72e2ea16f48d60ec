"""A period aggregated slice by slice counts exactly what it counts in one piece."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import aggregation
from analytics.aggregation import Period, period_counts_compute, period_slices
from analytics.selectors import ReportScope, scope_counts_gather
from analytics.stats.counts import period_counts_to_json
from inspections.models import Item

from .test_rollups import _populate, _setup

pytestmark = pytest.mark.django_db(transaction=False)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), size=st.integers(1, 6), instants=st.integers(1, 8))
def test_slices_add_up_to_the_whole_period(
    data, size, instants, inspector, inspector2, monkeypatch
):
    today = datetime.now(UTC).date()
    with transaction.atomic():
        queue, version = _setup([inspector, inspector2])
        _populate(data.draw, queue, version, [inspector, inspector2], today)
        # Few arrival instants, so that many items arrive together and share a slice.
        start = datetime.combine(today, datetime.min.time(), tzinfo=UTC) - timedelta(days=5)
        for n, pk in enumerate(Item.objects.filter(queue=queue).values_list("pk", flat=True)):
            Item.objects.filter(pk=pk).update(received_at=start + timedelta(hours=n % instants))
        period = Period(queue=queue, model_version=version, start=start, end=start + timedelta(1))
        scope = ReportScope(queue=queue, model_version=version, since=today, until=today)
        bins = scope_counts_gather(scope=scope).bins

        slices = period_slices(period, size)
        assert slices[0].start == period.start and slices[-1].end == period.end
        assert all(a.end == b.start < b.end for a, b in pairwise(slices))
        held = [
            Item.objects.filter(queue=queue, received_at__gte=s.start, received_at__lt=s.end)
            for s in slices
        ]
        assert sum(items.count() for items in held) == Item.objects.filter(queue=queue).count()
        # Beyond the items that arrived at its first instant, a slice holds fewer than `size`.
        for items in held:
            first = items.order_by("received_at").values_list("received_at", flat=True).first()
            assert items.exclude(received_at=first).count() < size

        monkeypatch.setattr(aggregation, "SLICE_ITEMS", 10**6)
        whole = period_counts_compute(period=period, bins=bins)
        monkeypatch.setattr(aggregation, "SLICE_ITEMS", size)
        sliced = period_counts_compute(period=period, bins=bins)
        assert period_counts_to_json(sliced) == period_counts_to_json(whole)
        # Paired differences are kept in arrival order, which the gate's sequence needs.
        assert sliced.paired.tolist() == whole.paired.tolist()
        transaction.set_rollback(True)


def test_a_period_without_items_is_one_slice(inspector):
    queue, version = _setup([inspector])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    period = Period(queue=queue, model_version=version, start=start, end=start + timedelta(1))
    assert period_slices(period, 1) == [period]
