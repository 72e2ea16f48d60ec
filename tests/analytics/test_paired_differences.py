"""Paired differences of panel items: their values, their arrival order, their compact storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.contrib.auth.models import User
from hypothesis import given
from hypothesis import strategies as st

from analytics import services
from analytics.models import DailyRollup
from analytics.selectors import ReportScope, scope_counts_gather
from analytics.stats.counts import (
    PeriodCounts,
    period_counts_from_json,
    period_counts_sum,
    period_counts_to_json,
)
from analytics.stats.paired import (
    paired_difference,
    paired_differences_from_counts,
    paired_from_json,
    paired_to_json,
)
from deployments.models import ModelVersion, Prediction
from inspections.models import Item, Judgment, Queue

LABELS = ["a", "b", "c"]


@pytest.mark.parametrize(
    ("inspectors", "model", "expected"),
    [
        (["a", "a"], "a", 0.0),  # all agree
        (["a", "a"], "b", -1.0),  # the pair agrees, the model with neither
        (["a", "b"], "a", 0.5),  # the model sides with one of two who disagree
        (["a", "b"], "c", 0.0),
        (["a", "a", "a"], "a", 0.0),
        (["a", "a", "b"], "a", 2 / 3 - 1 / 3),  # one pair of three agrees
        (["a", "a", "b"], "b", 1 / 3 - 1 / 3),
        (["a", "a", "b"], "c", -1 / 3),
        (["a", "b", "c"], "a", 1 / 3),  # no pair agrees
        (["a", "a", "a"], "c", -1.0),
    ],
)
def test_a_panel_items_difference_is_model_share_minus_pair_share(inspectors, model, expected):
    assert paired_difference(inspector_labels=inspectors, model_label=model) == pytest.approx(
        expected
    )


def test_equal_fractions_give_the_same_float_however_they_arise():
    # A panel of five: model agrees with 3 of 5 while 4 of 10 pairs agree, or 1 of 5 and 0.
    values = paired_differences_from_counts(
        judgments=[5, 5], model_agrees=[3, 1], agreeing_pairs=[4, 0]
    )
    assert values.tolist() == [0.2, 0.2]
    assert 3 / 5 - 4 / 10 != 0.2  # what share arithmetic would have stored


def test_a_single_judgment_has_no_paired_difference():
    with pytest.raises(ValueError, match="at least two"):
        paired_differences_from_counts(judgments=[1], model_agrees=[1], agreeing_pairs=[0])


panel_values = st.lists(
    st.sampled_from([-1.0, -1 / 3, 0.0, 1 / 3, 0.5, -0.5, 0.25, -0.6]), max_size=300
)


@given(panel_values)
def test_the_compact_encoding_round_trips_in_order(values):
    array = np.asarray(values, np.float64)
    encoded = paired_to_json(array)
    assert isinstance(encoded["codes"], str)
    assert len(encoded["codes"]) == array.size
    assert np.array_equal(paired_from_json(encoded), array)


def test_many_distinct_values_fall_back_to_a_list_of_small_ints():
    array = np.linspace(-1, 1, 100)
    encoded = paired_to_json(array)
    assert isinstance(encoded["codes"], list)
    assert np.array_equal(paired_from_json(encoded), array)


def test_a_days_sequence_at_ten_thousand_panel_items_stores_in_about_ten_kilobytes():
    rng = np.random.default_rng(0)
    values = rng.choice([-1.0, -1 / 3, 0.0, 1 / 3, 0.5], size=10_000)
    size = len(json.dumps(paired_to_json(values)))
    assert 10_000 <= size < 10_200


def test_adding_periods_concatenates_their_sequences_in_order():
    days = [
        PeriodCounts(n_classes=3, paired=np.array([0.5, 0.0])),
        PeriodCounts(n_classes=3),
        PeriodCounts(n_classes=3, paired=np.array([-1.0])),
    ]
    assert period_counts_sum(days, 3).paired.tolist() == [0.5, 0.0, -1.0]
    assert (days[0] + days[2]).paired.tolist() == [0.5, 0.0, -1.0]
    assert (days[2] + days[0]).paired.tolist() == [-1.0, 0.5, 0.0]
    assert period_counts_sum([], 3).paired.size == 0


# The database side: a hand-made queue whose panel items arrive out of id order.


def _version(queue: Queue) -> ModelVersion:
    return ModelVersion.objects.create(
        queue=queue,
        name="m",
        version="1",
        onnx_file="models/m.onnx",
        sha256="0" * 64,
        size_bytes=1,
        labels=["c", "a", "b"],
        input_width=2,
        input_name="x",
        probability_output="p",
    )


def _item(queue, version, name, received, judges, labels, model, *, status="ok", complete=True):
    item = Item.objects.create(
        queue=queue,
        external_id=name,
        features=[0.0, 0.0],
        received_at=received,
        judgments_needed=len(labels) if complete else len(labels) + 1,
    )
    for who, label in zip(judges, labels, strict=False):
        Judgment.objects.create(item=item, inspector=who, label=label, seconds_spent=1.0)
    Item.objects.filter(pk=item.pk).update(
        judgment_count=len(labels), human_status="complete" if complete else "pending"
    )
    if model is not None:
        Prediction.objects.create(
            item=item,
            model_version=version,
            status=status,
            label=model if status == "ok" else "",
            confidence=0.9 if status == "ok" else None,
            reason="" if status == "ok" else "timeout: 3 s",
            backend="fp32",
        )
    return item


@pytest.mark.django_db
def test_rollups_keep_each_days_panel_differences_in_arrival_order(inspector, inspector2):
    third = User.objects.create_user("inspector3")
    judges = [inspector, inspector2, third]
    queue = Queue.objects.create(name="Parts", slug="parts-paired", labels=LABELS, input_width=2)
    version = _version(queue)
    today = services.utc_today()
    day1, day2 = today - timedelta(days=2), today - timedelta(days=1)

    def at(day, hour):
        return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=hour)

    # Created in this order (ids rising), received in another.
    _item(queue, version, "d1-late", at(day1, 20), judges, ["a", "b", "c"], "a")  # 1/3
    _item(queue, version, "d1-early", at(day1, 2), judges, ["a", "a"], "b")  # -1
    _item(queue, version, "d1-single", at(day1, 3), judges, ["a"], "a")  # not a panel
    _item(queue, version, "d1-open", at(day1, 4), judges, ["a", "b"], "a", complete=False)
    _item(queue, version, "d1-error", at(day1, 5), judges, ["a", "b"], "a", status="error")
    _item(queue, version, "d1-unscored", at(day1, 6), judges, ["a", "b"], None)
    _item(queue, version, "d1-mid", at(day1, 10), judges, ["a", "b"], "a")  # 0.5
    _item(queue, version, "d2-three", at(day2, 8), judges, ["a", "a", "b"], "c")  # -1/3
    _item(queue, version, "d2-two", at(day2, 1), judges, ["c", "c"], "c")  # 0
    _item(queue, version, "today", at(today, 0), judges, ["b", "c", "b"], "b")  # 2/3 - 1/3

    assert services.rollups_refresh(today=today) == 2
    stored = {
        r.day: period_counts_from_json(r.counts).paired.tolist()
        for r in DailyRollup.objects.filter(model_version=version)
    }
    assert stored[day1] == pytest.approx([-1.0, 0.5, 1 / 3])
    assert stored[day2] == pytest.approx([0.0, -1 / 3])
    rollup = DailyRollup.objects.get(model_version=version, day=day1)
    assert len(rollup.counts["paired"]["codes"]) == 3

    scope = ReportScope(queue=queue, model_version=version, since=day1, until=today)
    gathered = scope_counts_gather(scope=scope, with_features=False)
    expected = [-1.0, 0.5, 1 / 3, 0.0, -1 / 3, 1 / 3]
    assert gathered.total.paired.tolist() == pytest.approx(expected)
    # The same from the raw rows: no rollups at all.
    DailyRollup.objects.all().delete()
    live = scope_counts_gather(scope=scope, with_features=False).total
    assert live.paired.tolist() == gathered.total.paired.tolist()
    assert period_counts_from_json(period_counts_to_json(live)).paired.tolist() == (
        live.paired.tolist()
    )
