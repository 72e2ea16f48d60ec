"""Importing past judgments in bulk: their times kept, the judging rules kept, all or nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inspections.judgment_import import PastJudgment, judgments_import
from inspections.models import Item, Judgment
from inspections.services import JudgmentRejected, item_create

pytestmark = pytest.mark.django_db

ZEROS = [0.0] * 64


def _item(queue, external_id, *, needed=1, hours_ago=5):
    item = item_create(
        queue=queue,
        external_id=external_id,
        features=ZEROS,
        received_at=timezone.now() - timedelta(hours=hours_ago),
    )
    Item.objects.filter(pk=item.pk).update(judgments_needed=needed)
    item.refresh_from_db()
    return item


def _row(item, user, label="3", *, hours_ago=4.0):
    return PastJudgment(item.pk, user.pk, label, 2.5, timezone.now() - timedelta(hours=hours_ago))


def test_imported_judgments_keep_their_times_and_complete_their_items(queue, inspector, inspector2):
    single, panel = _item(queue, "single"), _item(queue, "panel", needed=3)
    rows = [
        _row(single, inspector, "7", hours_ago=4),
        _row(panel, inspector, "1", hours_ago=3),
        _row(panel, inspector2, "1", hours_ago=2),
    ]

    assert judgments_import(queue=queue, judgments=rows) == 3

    stored = Judgment.objects.order_by("created_at")
    assert [(j.item_id, j.inspector_id, j.label) for j in stored] == [
        (single.pk, inspector.pk, "7"),
        (panel.pk, inspector.pk, "1"),
        (panel.pk, inspector2.pk, "1"),
    ]
    assert [j.created_at for j in stored] == [row.created_at for row in rows]
    single.refresh_from_db()
    panel.refresh_from_db()
    assert (single.judgment_count, single.human_status) == (1, Item.HumanStatus.COMPLETE)
    # Two of its three judgments: the panel item still waits for one more inspector.
    assert (panel.judgment_count, panel.human_status) == (2, Item.HumanStatus.PENDING)


def _bad_rows(problem, queue, other_queue, inspector, inspector2):
    """Return rows of which the last breaks one rule."""
    item = _item(queue, "waiting")
    if problem == "label":
        return [_row(item, inspector, "x")]
    if problem == "twice":
        panel = _item(queue, "panel", needed=2)
        return [_row(panel, inspector, hours_ago=3), _row(panel, inspector, hours_ago=2)]
    if problem == "too_many":
        return [_row(item, inspector), _row(item, inspector2)]
    if problem == "future":
        return [_row(item, inspector, hours_ago=-1)]
    if problem == "before_arrival":
        return [_row(item, inspector, hours_ago=6)]
    elsewhere = item_create(queue=other_queue, external_id="elsewhere", features=[0.0] * 3)
    return [_row(elsewhere, inspector)]


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("label", "is not a label of queue digits"),
        ("twice", "already judged it"),
        ("too_many", "needs no more judgments"),
        ("future", "in the future"),
        ("before_arrival", "before its item arrived"),
        ("other_queue", "is not in queue digits"),
    ],
)
def test_one_bad_row_stores_nothing_and_says_what_is_wrong(
    queue, other_queue, inspector, inspector2, problem, message
):
    good = _row(_item(queue, "fine"), inspector)
    rows = [good, *_bad_rows(problem, queue, other_queue, inspector, inspector2)]

    with pytest.raises(JudgmentRejected, match=message):
        judgments_import(queue=queue, judgments=rows)

    assert not Judgment.objects.exists()
    assert not Item.objects.filter(judgment_count__gt=0).exists()
    assert not Item.objects.filter(human_status=Item.HumanStatus.COMPLETE).exists()


def test_importing_nothing_stores_nothing(queue):
    assert judgments_import(queue=queue, judgments=[]) == 0
