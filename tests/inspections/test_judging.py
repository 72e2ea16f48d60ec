"""Serving items to inspectors, recording and undoing judgments, the inspector's own figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from inspections import selectors
from inspections.models import Assignment, Item, Judgment, Queue
from inspections.services import (
    JudgmentRejected,
    item_assign_next,
    item_create,
    judgment_record,
    judgment_undo,
)

pytestmark = pytest.mark.django_db

ZEROS = [0.0] * 64


@pytest.fixture(autouse=True)
def _windows(settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "ASSIGNMENT_SECONDS": 600, "UNDO_SECONDS": 30}


def _item(queue, external_id, *, minutes_ago=0.0, needed=1):
    item = item_create(
        queue=queue,
        external_id=external_id,
        features=ZEROS,
        received_at=timezone.now() - timedelta(minutes=minutes_ago),
    )
    if needed != item.judgments_needed:
        Item.objects.filter(pk=item.pk).update(judgments_needed=needed)
        item.refresh_from_db()
    return item


def _expire_reservations():
    Assignment.objects.update(expires_at=timezone.now() - timedelta(seconds=1))


def _age_judgments(seconds):
    Judgment.objects.update(created_at=timezone.now() - timedelta(seconds=seconds))


def _judge(item, inspector, label="3", seconds=2.0):
    return judgment_record(item=item, inspector=inspector, label=label, seconds_spent=seconds)


# Serving the next item


def test_the_oldest_waiting_item_is_served_first(queue, inspector):
    _item(queue, "new", minutes_ago=1)
    oldest = _item(queue, "old", minutes_ago=10)
    _item(queue, "middle", minutes_ago=5)

    assert item_assign_next(queue=queue, inspector=inspector) == oldest


def test_an_empty_queue_serves_nothing(queue, inspector):
    assert item_assign_next(queue=queue, inspector=inspector) is None


def test_items_of_another_queue_or_already_complete_are_not_served(
    queue, other_queue, inspector, inspector2
):
    done = _item(queue, "done", minutes_ago=5)
    _judge(done, inspector2)
    item_create(queue=other_queue, external_id="elsewhere", features=[1, 2, 3])

    assert item_assign_next(queue=queue, inspector=inspector) is None


def test_an_item_the_inspector_already_judged_is_never_served_to_them_again(
    queue, inspector, inspector2
):
    double = _item(queue, "double", minutes_ago=10, needed=2)
    later = _item(queue, "later", minutes_ago=1)
    assert item_assign_next(queue=queue, inspector=inspector) == double
    _judge(double, inspector)

    # Still waiting for a second opinion, and older, but not from this inspector.
    assert item_assign_next(queue=queue, inspector=inspector) == later
    assert item_assign_next(queue=queue, inspector=inspector2) == double


def test_the_same_item_comes_back_when_the_inspector_reloads(queue, inspector):
    first = _item(queue, "a", minutes_ago=10)
    assert item_assign_next(queue=queue, inspector=inspector) == first
    # A newer item that arrives meanwhile does not replace the one on screen, and an older
    # one would not either: the reserved item comes back until it is judged.
    _item(queue, "older", minutes_ago=20)

    assert item_assign_next(queue=queue, inspector=inspector) == first
    assert Assignment.objects.filter(inspector=inspector).count() == 1


def test_an_item_reserved_by_one_inspector_is_not_served_to_another_until_it_expires(
    queue, inspector, inspector2
):
    only = _item(queue, "only")
    assert item_assign_next(queue=queue, inspector=inspector) == only

    assert item_assign_next(queue=queue, inspector=inspector2) is None

    _expire_reservations()
    assert item_assign_next(queue=queue, inspector=inspector2) == only


def test_the_second_inspector_gets_the_next_item_while_the_first_is_reserved(
    queue, inspector, inspector2
):
    first = _item(queue, "a", minutes_ago=10)
    second = _item(queue, "b", minutes_ago=5)

    assert item_assign_next(queue=queue, inspector=inspector) == first
    assert item_assign_next(queue=queue, inspector=inspector2) == second


def test_a_reservation_lasts_the_configured_window(settings, queue, inspector):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "ASSIGNMENT_SECONDS": 90}
    item = _item(queue, "a")
    before = timezone.now()
    item_assign_next(queue=queue, inspector=inspector)

    assignment = Assignment.objects.get(item=item, inspector=inspector)
    assert assignment.expires_at - assignment.shown_at == timedelta(seconds=90)
    assert assignment.shown_at >= before


def test_an_item_needing_two_judgments_goes_to_two_inspectors_and_completes_after_both(
    queue, inspector, inspector2, ml_lead
):
    double = _item(queue, "double", needed=2)

    assert item_assign_next(queue=queue, inspector=inspector) == double
    assert item_assign_next(queue=queue, inspector=inspector2) == double
    # Both open judgments are reserved: a third person gets nothing.
    assert item_assign_next(queue=queue, inspector=ml_lead) is None

    _judge(double, inspector, "3")
    double.refresh_from_db()
    assert double.human_status == Item.HumanStatus.PENDING
    assert double.judgment_count == 1

    _judge(double, inspector2, "8")
    double.refresh_from_db()
    assert double.human_status == Item.HumanStatus.COMPLETE
    assert double.judgment_count == 2
    assert item_assign_next(queue=queue, inspector=inspector2) is None


def test_a_queue_with_a_panel_of_three_sends_sampled_items_to_three_inspectors(
    queue, inspector, inspector2, ml_lead, admin_user
):
    Queue.objects.filter(pk=queue.pk).update(double_inspection_rate=1.0, panel_size=3)
    queue.refresh_from_db()
    panel = item_create(queue=queue, external_id="panel", features=ZEROS)
    assert panel.judgments_needed == 3
    third = User.objects.create_user("inspector3")
    third.groups.add(*inspector.groups.all())

    for who in (inspector, inspector2, third):
        assert item_assign_next(queue=queue, inspector=who) == panel
    assert item_assign_next(queue=queue, inspector=admin_user) is None

    for who, label in ((inspector, "3"), (inspector2, "3")):
        _judge(panel, who, label)
        panel.refresh_from_db()
        assert panel.human_status == Item.HumanStatus.PENDING
    _judge(panel, third, "5")
    panel.refresh_from_db()
    assert (panel.human_status, panel.judgment_count) == (Item.HumanStatus.COMPLETE, 3)


def test_a_panel_is_two_to_five_inspectors(queue):
    for size in (1, 6):
        queue.panel_size = size
        with pytest.raises(ValidationError, match="panel_size"):
            queue.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        Queue.objects.filter(pk=queue.pk).update(panel_size=6)


# Recording a judgment


def test_a_judgment_completes_an_item_that_needs_one(queue, inspector):
    item = _item(queue, "a")
    item_assign_next(queue=queue, inspector=inspector)

    judgment = _judge(item, inspector, "7", seconds=3.5)

    item.refresh_from_db()
    assert item.human_status == Item.HumanStatus.COMPLETE
    assert item.judgment_count == 1
    assert (judgment.label, judgment.seconds_spent, judgment.inspector) == ("7", 3.5, inspector)
    assert not Assignment.objects.filter(item=item).exists()


def test_the_label_must_be_one_of_the_queue_labels(queue, inspector):
    item = _item(queue, "a")

    for label in ("10", "", "seven", " 7"):
        with pytest.raises(JudgmentRejected, match="is not a label of queue digits"):
            _judge(item, inspector, label)

    item.refresh_from_db()
    assert item.judgment_count == 0
    assert item.human_status == Item.HumanStatus.PENDING
    assert not Judgment.objects.exists()


def test_an_inspector_cannot_judge_the_same_item_twice(queue, inspector):
    double = _item(queue, "double", needed=2)
    _judge(double, inspector, "3")

    with pytest.raises(JudgmentRejected, match="already judged"):
        _judge(double, inspector, "5")

    double.refresh_from_db()
    assert double.judgment_count == 1
    assert list(Judgment.objects.values_list("label", flat=True)) == ["3"]


def test_a_complete_item_takes_no_further_judgment(queue, inspector, inspector2):
    item = _item(queue, "a")
    _judge(item, inspector)

    with pytest.raises(JudgmentRejected, match="no longer needs a judgment"):
        _judge(item, inspector2)
    assert Judgment.objects.count() == 1


def test_two_inspectors_racing_for_the_last_open_judgment_store_only_one(
    queue, inspector, inspector2
):
    item = _item(queue, "a")
    # Both screens show the item: the first reservation expired before the second was made.
    seen_by_first = item_assign_next(queue=queue, inspector=inspector)
    _expire_reservations()
    seen_by_second = item_assign_next(queue=queue, inspector=inspector2)
    assert seen_by_first == seen_by_second == item

    _judge(seen_by_first, inspector, "1")
    # The second submission carries the stale copy that still says "pending": the service
    # must re-read the item under its lock rather than trust it.
    assert seen_by_second.human_status == Item.HumanStatus.PENDING
    with pytest.raises(JudgmentRejected, match="no longer needs a judgment"):
        _judge(seen_by_second, inspector2, "2")

    item.refresh_from_db()
    assert item.judgment_count == 1
    assert list(Judgment.objects.values_list("inspector", flat=True)) == [inspector.pk]


def test_the_database_refuses_more_judgments_than_an_item_needs(queue):
    item = _item(queue, "a")
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(judgment_count=2)


def test_the_time_spent_is_kept_within_zero_and_a_day(queue, inspector, inspector2):
    double = _item(queue, "double", needed=2)
    assert _judge(double, inspector, seconds=-5).seconds_spent == 0.0
    assert _judge(double, inspector2, seconds=10**9).seconds_spent == 24 * 3600.0


# Undo


def test_a_judgment_can_be_undone_within_the_window_and_the_item_comes_back(
    queue, inspector, inspector2
):
    item = _item(queue, "a", minutes_ago=10)
    _item(queue, "b", minutes_ago=5)
    item_assign_next(queue=queue, inspector=inspector)
    _judge(item, inspector, "4")
    _age_judgments(25)

    undone = judgment_undo(queue=queue, inspector=inspector)

    assert undone == item
    assert undone.human_status == Item.HumanStatus.PENDING
    assert undone.judgment_count == 0
    assert not Judgment.objects.exists()
    # Served again to the same inspector, and reserved for them rather than for others.
    assert item_assign_next(queue=queue, inspector=inspector) == item
    assert item_assign_next(queue=queue, inspector=inspector2).external_id == "b"


def test_a_judgment_older_than_the_window_cannot_be_undone(queue, inspector):
    item = _item(queue, "a")
    _judge(item, inspector, "4")
    _age_judgments(31)

    assert judgment_undo(queue=queue, inspector=inspector) is None

    item.refresh_from_db()
    assert item.human_status == Item.HumanStatus.COMPLETE
    assert Judgment.objects.count() == 1


def test_the_undo_window_follows_the_setting(settings, queue, inspector):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "UNDO_SECONDS": 120}
    _judge(_item(queue, "a"), inspector)
    _age_judgments(100)

    assert judgment_undo(queue=queue, inspector=inspector) is not None


def test_undo_withdraws_only_the_latest_judgment_of_that_inspector(queue, inspector, inspector2):
    first, second = _item(queue, "a", minutes_ago=2), _item(queue, "b", minutes_ago=1)
    _judge(first, inspector, "1")
    _judge(second, inspector, "2")
    Judgment.objects.filter(item=first).update(created_at=timezone.now() - timedelta(seconds=5))
    others = _item(queue, "c")
    _judge(others, inspector2, "3")

    assert judgment_undo(queue=queue, inspector=inspector) == second
    assert sorted(Judgment.objects.values_list("item__external_id", flat=True)) == ["a", "c"]


def test_undoing_one_of_two_judgments_reopens_the_item_for_that_inspector(
    queue, inspector, inspector2
):
    double = _item(queue, "double", needed=2)
    _judge(double, inspector, "3")
    _judge(double, inspector2, "5")

    judgment_undo(queue=queue, inspector=inspector2)

    double.refresh_from_db()
    assert (double.human_status, double.judgment_count) == (Item.HumanStatus.PENDING, 1)
    assert item_assign_next(queue=queue, inspector=inspector2) == double
    assert item_assign_next(queue=queue, inspector=inspector) is None


def test_there_is_nothing_to_undo_in_another_queue(queue, other_queue, inspector):
    _judge(_item(queue, "a"), inspector)
    assert judgment_undo(queue=other_queue, inspector=inspector) is None


# The inspector's own figures


def test_inspector_day_counts_todays_judgments_and_their_pace(queue, inspector, inspector2):
    noon = timezone.localtime().replace(hour=12, minute=0, second=0, microsecond=0)
    spent = {"a": 10.0, "b": 4.0, "c": 7.0, "yesterday": 3.0, "theirs": 1.0}
    at = {
        "a": noon - timedelta(minutes=59, seconds=50),  # started 11:00:00
        "b": noon - timedelta(minutes=30),
        "c": noon - timedelta(minutes=1),
        "yesterday": noon - timedelta(hours=13),
        "theirs": noon - timedelta(minutes=2),
    }
    for external_id in spent:
        who = inspector2 if external_id == "theirs" else inspector
        judgment = _judge(_item(queue, external_id), who, seconds=spent[external_id])
        Judgment.objects.filter(pk=judgment.pk).update(created_at=at[external_id])

    day = selectors.inspector_day(inspector=inspector, now=noon)

    assert day.judged == 3
    assert day.per_hour == pytest.approx(3.0)  # three judgments in the hour since 11:00
    assert day.median_seconds == 7.0


def test_inspector_day_is_empty_before_the_first_judgment(inspector):
    assert selectors.inspector_day(inspector=inspector) == selectors.InspectorDay(0, None, None)


# The human decision on an item


def test_an_item_decision_is_pending_until_every_judgment_is_in(queue, inspector):
    double = _item(queue, "double", needed=2)
    _judge(double, inspector, "6")
    double.refresh_from_db()

    assert selectors.item_decision(double, ["6"]) == selectors.ItemDecision("pending", None)


def test_an_item_decision_is_the_label_when_judgments_agree(queue, inspector, inspector2):
    double = _item(queue, "double", needed=2)
    _judge(double, inspector, "6")
    _judge(double, inspector2, "6")
    double.refresh_from_db()

    assert selectors.item_decision(double, ["6", "6"]) == selectors.ItemDecision("complete", "6")


def test_an_item_decision_is_disputed_when_judgments_disagree(queue, inspector, inspector2):
    double = _item(queue, "double", needed=2)
    _judge(double, inspector, "6")
    _judge(double, inspector2, "5")
    double.refresh_from_db()

    assert selectors.item_decision(double, ["6", "5"]) == selectors.ItemDecision("disputed", None)
