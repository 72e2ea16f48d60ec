"""Reads on the human side. Nothing here touches model output: inspectors are blind to it."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from inspections.models import Item, Judgment, Queue


@dataclass(frozen=True)
class InspectorDay:
    judged: int
    per_hour: float | None
    median_seconds: float | None


def inspector_day(*, inspector: User, now: datetime | None = None) -> InspectorDay:
    """Return the inspector's count and pace since local midnight."""
    now = now or timezone.now()
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = list(
        Judgment.objects.filter(inspector=inspector, created_at__gte=midnight)
        .order_by("created_at")
        .values_list("created_at", "seconds_spent")
    )
    if not rows:
        return InspectorDay(0, None, None)
    first_started = rows[0][0] - timedelta(seconds=rows[0][1])
    hours = max((now - first_started).total_seconds() / 3600.0, 1 / 60)
    return InspectorDay(
        judged=len(rows),
        per_hour=len(rows) / hours,
        median_seconds=statistics.median(seconds for _, seconds in rows),
    )


def undoable_judgment(*, inspector: User, queue: Queue) -> Judgment | None:
    """Return the inspector's latest judgment in the queue if it may still be undone."""
    window = timedelta(seconds=settings.SHADOWLAB["UNDO_SECONDS"])
    return (
        Judgment.objects.filter(
            inspector=inspector, item__queue=queue, created_at__gte=timezone.now() - window
        )
        .select_related("item")
        .order_by("-created_at", "-id")
        .first()
    )


def judgments_recent(*, inspector: User, limit: int = 50) -> QuerySet[Judgment]:
    """Return the inspector's own latest judgments, newest first."""
    return (
        Judgment.objects.filter(inspector=inspector)
        .select_related("item", "item__queue")
        .order_by("-created_at", "-id")[:limit]
    )


def queues_open() -> QuerySet[Queue]:
    return Queue.objects.order_by("name")


def item_pixels(item: Item) -> list[list[int]]:
    """Return the item's features as rows of grey levels (0 black ink .. 255 paper)."""
    rows, columns = item.queue.image_shape or (1, len(item.features))
    values = [float(v) for v in item.features]
    low, high = min(values), max(values)
    span = high - low or 1.0
    grey = [255 - round(255 * (value - low) / span) for value in values]
    return [grey[r * columns : (r + 1) * columns] for r in range(rows)]


def item_image_svg(item: Item) -> SafeString:
    """Return the item's features as crisp SVG squares, one per feature.

    Built here rather than with template loops: it is on every inspector request, and
    sixty-four nested template iterations cost more than the rest of the page.
    """
    rows = item_pixels(item)
    columns = len(rows[0]) if rows else 0
    squares = format_html_join(
        "",
        '<rect x="{}" y="{}" width="1" height="1" fill="rgb({},{},{})"/>',
        ((x, y, grey, grey, grey) for y, row in enumerate(rows) for x, grey in enumerate(row)),
    )
    return format_html(
        '<svg class="pixels" viewBox="0 0 {} {}" width="320" height="320" '
        'shape-rendering="crispEdges" role="img" aria-label="item image">{}</svg>',
        columns,
        len(rows),
        squares,
    )


@dataclass(frozen=True)
class ItemDecision:
    status: str  # pending, complete or disputed
    decision: str | None


def item_decision(item: Item, labels: list[str]) -> ItemDecision:
    """Return the human decision on an item: the label when its judgments agree."""
    if item.human_status != Item.HumanStatus.COMPLETE:
        return ItemDecision("pending", None)
    if len(set(labels)) == 1:
        return ItemDecision("complete", labels[0])
    return ItemDecision("disputed", None)
