"""Actions on the human side: queues, assignment, judgments, API tokens (intake: intake.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

# Tokens and intake have their own modules; their services stay importable from here, where
# callers look.
from inspections.api_tokens import api_token_authenticate, api_token_create
from inspections.intake import (
    BATCH_MAX_ITEMS,
    BatchItemResult,
    BatchRejected,
    BulkResult,
    ItemDuplicate,
    ItemRejected,
    item_create,
    items_create_bulk,
    items_intake_batch,
)
from inspections.models import Assignment, Item, Judgment, Queue

__all__ = [
    "BATCH_MAX_ITEMS",
    "BatchItemResult",
    "BatchRejected",
    "BulkResult",
    "ItemDuplicate",
    "ItemRejected",
    "JudgmentRefused",
    "JudgmentRejected",
    "api_token_authenticate",
    "api_token_create",
    "item_assign_next",
    "item_create",
    "items_create_bulk",
    "items_intake_batch",
    "judgment_record",
    "judgment_submit",
    "judgment_undo",
    "queue_create",
]


class JudgmentRejected(ValueError):
    """The judgment cannot be recorded; nothing was stored."""


class JudgmentRefused(JudgmentRejected):
    """The item is not this inspector's to judge now (not theirs, expired, decided)."""


def queue_create(
    *,
    name: str,
    slug: str,
    labels: Sequence[str],
    input_width: int,
    image_shape: Sequence[int] | None = None,
    double_inspection_rate: float = 0.1,
    panel_size: int = 2,
    audit_rate: float = 0.10,
) -> Queue:
    labels = [str(label) for label in labels]
    if len(set(labels)) != len(labels) or not labels:
        raise ValueError("labels must be a non-empty list without repeats")
    queue = Queue(
        name=name,
        slug=slug,
        labels=labels,
        input_width=input_width,
        image_shape=list(image_shape) if image_shape else None,
        double_inspection_rate=double_inspection_rate,
        panel_size=panel_size,
        audit_rate=audit_rate,
    )
    queue.full_clean()
    queue.save()
    return queue


def _assignment_window() -> timedelta:
    return timedelta(seconds=settings.SHADOWLAB["ASSIGNMENT_SECONDS"])


def _assignment_put(*, item: Item, inspector: User, now: datetime) -> None:
    """Reserve the item for the inspector from now on (one statement, insert or refresh)."""
    Assignment.objects.bulk_create(
        [
            Assignment(
                item=item, inspector=inspector, shown_at=now, expires_at=now + _assignment_window()
            )
        ],
        update_conflicts=True,
        unique_fields=["item", "inspector"],
        update_fields=["shown_at", "expires_at"],
    )


def item_assign_next(*, queue: Queue, inspector: User) -> Item | None:
    """Reserve and return the next item this inspector may judge, or None if there is none.

    An item already on this inspector's screen comes back first. Otherwise the oldest item
    still needing a judgment that this inspector has not judged, and that is not already
    reserved by as many other inspectors as it still needs judgments.
    """
    now = timezone.now()
    with transaction.atomic():
        current = (
            Assignment.objects.filter(
                inspector=inspector,
                item__queue=queue,
                expires_at__gt=now,
                item__human_status=Item.HumanStatus.PENDING,
            )
            .select_related("item", "item__queue")
            .order_by("shown_at")
            .first()
        )
        if current is not None:
            return current.item
        others = (
            Assignment.objects.filter(item=OuterRef("pk"), expires_at__gt=now)
            .exclude(inspector=inspector)
            .values("item")
            .annotate(n=Count("id"))
            .values("n")
        )
        candidates = (
            Item.objects.filter(queue=queue, human_status=Item.HumanStatus.PENDING)
            .exclude(Exists(Judgment.objects.filter(item=OuterRef("pk"), inspector=inspector)))
            .annotate(reserved=Coalesce(Subquery(others, output_field=IntegerField()), Value(0)))
            .filter(reserved__lt=F("judgments_needed") - F("judgment_count"))
            .order_by("received_at", "id")
        )
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        passed: list[int] = []
        while True:
            item = candidates.exclude(pk__in=passed).first()
            if item is None:
                return None
            # The candidates query read the reservations from a snapshot taken before it
            # waited for nothing and locked the row: another inspector's transaction may have
            # reserved this item and released its lock in between. Holding the lock now, a
            # fresh count sees every reservation made before it.
            reserved = (
                Assignment.objects.filter(item=item, expires_at__gt=now)
                .exclude(inspector=inspector)
                .count()
            )
            if reserved < item.judgments_needed - item.judgment_count:
                break
            passed.append(item.pk)
        item.queue = queue  # the caller renders it; spare a query
        _assignment_put(item=item, inspector=inspector, now=now)
    return item


def judgment_record(*, item: Item, inspector: User, label: str, seconds_spent: float) -> Judgment:
    """Store an inspector's decision on an item; never waits on a model."""
    if label not in item.queue.labels:
        raise JudgmentRejected(f"'{label}' is not a label of queue {item.queue.slug}")
    seconds_spent = min(max(float(seconds_spent), 0.0), 24 * 3600.0)
    with transaction.atomic():
        # Lock the item so that two inspectors cannot both take its last open judgment.
        locked = (
            Item.objects.select_for_update()
            .only("human_status", "judgment_count", "judgments_needed")
            .get(pk=item.pk)
        )
        if locked.human_status != Item.HumanStatus.PENDING:
            raise JudgmentRefused("this item no longer needs a judgment")
        if Judgment.objects.filter(item=locked, inspector=inspector).exists():
            raise JudgmentRefused("you have already judged this item")
        judgment = Judgment.objects.create(
            item=locked, inspector=inspector, label=label, seconds_spent=seconds_spent
        )
        locked.judgment_count += 1
        if locked.judgment_count >= locked.judgments_needed:
            locked.human_status = Item.HumanStatus.COMPLETE
        locked.save(update_fields=["judgment_count", "human_status"])
        Assignment.objects.filter(item=locked, inspector=inspector).delete()
    return judgment


def judgment_submit(*, queue: Queue, item_id: int, inspector: User, label: str) -> Judgment:
    """Record the inspector's decision on the item reserved on their screen in this queue.

    Only an item this inspector holds an unexpired reservation of, in this queue, is taken:
    never another inspector's item, one never shown, one of another queue, so no one picks
    which items get decided. The time spent is the time since the item was shown.
    """
    if label not in queue.labels:
        raise JudgmentRejected(f"'{label}' is not a label of queue {queue.slug}")
    now = timezone.now()
    assignment = (
        Assignment.objects.select_related("item")
        .filter(item_id=item_id, inspector=inspector, item__queue=queue)
        .first()
    )
    if assignment is None:
        # The same answer whether the item is someone else's, never shown, in another queue
        # or absent: the refusal tells nothing about other people's screens.
        raise JudgmentRefused("that item is not on your screen; nothing was recorded")
    item = assignment.item
    if assignment.expires_at <= now:
        minutes = round((assignment.expires_at - assignment.shown_at).total_seconds() / 60)
        raise JudgmentRefused(
            f"item {item.external_id} was reserved for you for {minutes} min and the time ran "
            "out; nothing was recorded"
        )
    item.queue = queue  # spare a query: the label check reads it
    return judgment_record(
        item=item,
        inspector=inspector,
        label=label,
        seconds_spent=(now - assignment.shown_at).total_seconds(),
    )


def judgment_undo(*, queue: Queue, inspector: User) -> Item | None:
    """Withdraw this inspector's latest judgment in the queue if it is recent enough.

    Return the item, reserved for the inspector again, or None if there is nothing to undo.
    """
    now = timezone.now()
    window = timedelta(seconds=settings.SHADOWLAB["UNDO_SECONDS"])
    with transaction.atomic():
        judgment = (
            Judgment.objects.select_for_update()
            .filter(inspector=inspector, item__queue=queue, created_at__gte=now - window)
            .order_by("-created_at", "-id")
            .first()
        )
        if judgment is None:
            return None
        item = Item.objects.select_for_update().get(pk=judgment.item_id)
        judgment.delete()
        Item.objects.filter(pk=item.pk).update(
            judgment_count=F("judgment_count") - 1, human_status=Item.HumanStatus.PENDING
        )
        _assignment_put(item=item, inspector=inspector, now=now)
        item.refresh_from_db()
    return item
