"""Import judgments made earlier (another system's records, the demo's history) in bulk.

The inspect screen records one judgment at a time through ``judgment_record``; an import
keeps the same rules (a queue label, one judgment per inspector and item, never more than
the item needs, the item complete once it has them all) for thousands of rows at once, and
keeps the time each judgment was made, and takes well under a second for thousands of rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import F, Field
from django.utils import timezone

from inspections.models import Item, Judgment, Queue
from inspections.services import JudgmentRejected

MAX_PROBLEMS_SHOWN = 5
INSERTED = ("item", "inspector", "label", "seconds_spent", "created_at")


@dataclass(frozen=True)
class PastJudgment:
    """One judgment as it was made: on which item, by whom, what and when."""

    item_id: int
    inspector_id: int
    label: str
    seconds_spent: float
    created_at: datetime


def _problems(
    queue: Queue, judgments: Sequence[PastJudgment], items: dict[int, Item], now: datetime
) -> list[str]:
    """Return what is wrong with the rows, given the items they name (locked by the caller)."""
    problems = []
    taken = set(Judgment.objects.filter(item_id__in=items).values_list("item_id", "inspector_id"))
    added: Counter[int] = Counter()
    for number, row in enumerate(judgments, start=1):
        item = items.get(row.item_id)
        if item is None:
            problems.append(f"row {number}: item {row.item_id} is not in queue {queue.slug}")
            continue
        if row.label not in queue.labels:
            problems.append(f"row {number}: '{row.label}' is not a label of queue {queue.slug}")
        if not 0.0 <= row.seconds_spent <= 24 * 3600.0:
            problems.append(f"row {number}: seconds_spent must be between 0 and 86400")
        if row.created_at > now or row.created_at < item.received_at:
            problems.append(f"row {number}: made before its item arrived or in the future")
        if (row.item_id, row.inspector_id) in taken:
            problems.append(f"row {number}: inspector {row.inspector_id} already judged it")
        taken.add((row.item_id, row.inspector_id))
        added[row.item_id] += 1
        if item.judgment_count + added[row.item_id] > item.judgments_needed:
            problems.append(f"row {number}: item {row.item_id} needs no more judgments")
    return problems


def _insert(judgments: Sequence[PastJudgment]) -> None:
    """Insert the rows with the times they were made, in one prepared statement."""
    # bulk_create would stamp created_at with the current time (auto_now_add), and dating the
    # rows afterwards with bulk_update builds one CASE branch per row in Python, which cost
    # seconds per thousand rows. Only the model's table and column names are formatted in.
    quote = connection.ops.quote_name
    fields = [cast("Field[Any, Any]", Judgment._meta.get_field(name)) for name in INSERTED]
    columns = ", ".join(quote(field.column) for field in fields)
    marks = ", ".join(["%s"] * len(fields))
    sql = f"INSERT INTO {quote(Judgment._meta.db_table)} ({columns}) VALUES ({marks})"  # noqa: S608
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(
            sql,
            [
                (row.item_id, row.inspector_id, row.label, row.seconds_spent, adapt(row.created_at))
                for row in judgments
            ],
        )


def judgments_import(*, queue: Queue, judgments: Sequence[PastJudgment]) -> int:
    """Store past judgments on the queue's items with their times; return how many.

    All or nothing: if any row breaks a rule nothing is stored and JudgmentRejected names
    the first problems.
    """
    if not judgments:
        return 0
    now = timezone.now()
    with transaction.atomic():
        # Locked, so that an inspector on the screen cannot take the same last judgment.
        items = {
            item.pk: item
            for item in Item.objects.select_for_update().filter(
                queue=queue, pk__in={row.item_id for row in judgments}
            )
        }
        problems = _problems(queue, judgments, items, now)
        if problems:
            more = len(problems) - MAX_PROBLEMS_SHOWN
            shown = "; ".join(problems[:MAX_PROBLEMS_SHOWN])
            raise JudgmentRejected(shown + (f"; and {more} more" if more > 0 else ""))
        _insert(judgments)
        added = Counter(row.item_id for row in judgments)
        for count in set(added.values()):
            Item.objects.filter(pk__in=[pk for pk, n in added.items() if n == count]).update(
                judgment_count=F("judgment_count") + count
            )
        Item.objects.filter(pk__in=added, judgment_count__gte=F("judgments_needed")).update(
            human_status=Item.HumanStatus.COMPLETE
        )
    return len(judgments)
