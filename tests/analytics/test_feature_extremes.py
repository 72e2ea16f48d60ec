"""Feature extremes add up over periods like the counts beside them."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from analytics.stats.counts import PeriodCounts, period_counts_from_json, period_counts_to_json
from analytics.stats.feature_extremes import (
    feature_extremes,
    feature_extremes_from_json,
    feature_extremes_to_json,
)

rows = hnp.arrays(
    np.float64, st.tuples(st.integers(0, 20), st.just(3)), elements=st.floats(-1e6, 1e6)
)


@given(rows, rows)
def test_the_extremes_of_two_periods_are_the_extremes_of_their_rows(first, second) -> None:
    together = feature_extremes(first, 3) + feature_extremes(second, 3)
    both = np.vstack((first, second))
    expected = feature_extremes(both, 3)
    assert together.minimum.tolist() == expected.minimum.tolist()
    assert together.maximum.tolist() == expected.maximum.tolist()
    if len(both):
        assert together.maximum.tolist() == both.max(axis=0).tolist()


@given(rows)
def test_extremes_survive_the_rollup_json(values) -> None:
    extremes = feature_extremes(values, 3)
    back = feature_extremes_from_json(feature_extremes_to_json(extremes))
    assert back is not None
    assert back.minimum.tolist() == extremes.minimum.tolist()
    assert back.maximum.tolist() == extremes.maximum.tolist()


def test_a_period_without_rows_reads_null_in_json_and_adds_nothing() -> None:
    empty = feature_extremes(np.empty((0, 2)), 2)
    assert feature_extremes_to_json(empty) == [[None, None], [None, None]]
    seen = PeriodCounts(n_classes=2, feature_extremes=feature_extremes([[1.0, -2.0]], 2))
    total = PeriodCounts(n_classes=2, feature_extremes=empty) + seen + PeriodCounts(n_classes=2)
    assert total.feature_extremes is not None
    assert total.feature_extremes.maximum.tolist() == [1.0, -2.0]
    round_trip = period_counts_from_json(period_counts_to_json(total)).feature_extremes
    assert round_trip is not None and round_trip.minimum.tolist() == [1.0, -2.0]
