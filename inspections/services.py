"""Actions on the human side: intake, assignment, judgments, API tokens."""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from deployments import routing
from deployments.enqueue import NewItem, shadow_enqueue
from inspections.features import FeatureError, features_validate
from inspections.models import ApiToken, Assignment, Item, Judgment, Queue


class ItemRejected(ValueError):
    """The item cannot be accepted; nothing was stored."""


class ItemDuplicate(ItemRejected):
    def __init__(self, external_id: str, existing_id: int) -> None:
        super().__init__(f"an item with external_id '{external_id}' already exists in this queue")
        self.existing_id = existing_id


class JudgmentRejected(ValueError):
    """The judgment cannot be recorded; nothing was stored."""


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


def _external_id_clean(external_id: object) -> str:
    """Return the external id trimmed, or raise ItemRejected if it is empty or too long."""
    cleaned = str(external_id).strip()
    if not cleaned or len(cleaned) > 200:
        raise ItemRejected("external_id must be 1 to 200 characters")
    return cleaned


def item_create(
    *,
    queue: Queue,
    external_id: str,
    features: object,
    received_at: datetime | None = None,
    rng: random.Random | None = None,
) -> Item:
    """Validate, route and store one item; it is queued for shadow scoring after commit."""
    external_id = _external_id_clean(external_id)
    try:
        values = features_validate(features, width=queue.input_width)
    except FeatureError as exc:
        raise ItemRejected(str(exc)) from exc
    existing = Item.objects.filter(queue=queue, external_id=external_id).values_list(
        "id", flat=True
    )
    if existing:
        raise ItemDuplicate(external_id, existing[0])
    decision = routing.route_decide(queue=queue, rng=rng or random)
    try:
        with transaction.atomic():
            item = Item.objects.create(
                queue=queue,
                external_id=external_id,
                features=values,
                received_at=received_at or timezone.now(),
                route=decision.route,
                judgments_needed=decision.judgments_needed,
                human_status=decision.human_status,
            )
            new = NewItem(item.pk, item.received_at.timestamp(), values)
            transaction.on_commit(partial(shadow_enqueue, queue_id=queue.pk, items=[new]))
    except IntegrityError as exc:
        # Lost a race with a concurrent request carrying the same external_id.
        existing = Item.objects.filter(queue=queue, external_id=external_id).values_list(
            "id", flat=True
        )
        if existing:
            raise ItemDuplicate(external_id, existing[0]) from exc
        raise
    return item


@dataclass
class BulkResult:
    created: int = 0
    duplicates: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def items_create_bulk(
    *,
    queue: Queue,
    rows: Iterable[tuple[str, object]],
    received_at: datetime | None = None,
    chunk_size: int = 1000,
    rng: random.Random | None = None,
    validate_only: bool = False,
) -> BulkResult:
    """Store many items in chunks (one transaction each) after validating every row first.

    Rows are (external_id, features). If any row is invalid nothing is stored and every
    problem is reported; rows whose external_id already exists are skipped and listed.
    """
    result = BulkResult()
    rng = rng or random.Random()
    prepared: list[tuple[str, list[float]]] = []
    seen: set[str] = set()
    for number, (external_id, features) in enumerate(rows, start=1):
        try:
            external_id = _external_id_clean(external_id)
        except ItemRejected as exc:
            result.errors.append(f"row {number}: {exc}")
            continue
        if external_id in seen:
            result.errors.append(
                f"row {number}: external_id '{external_id}' repeats an earlier row"
            )
            continue
        seen.add(external_id)
        try:
            prepared.append((external_id, features_validate(features, width=queue.input_width)))
        except FeatureError as exc:
            result.errors.append(f"row {number}: {exc}")
    if result.errors or validate_only:
        return result
    for start in range(0, len(prepared), chunk_size):
        chunk = prepared[start : start + chunk_size]
        existing = set(
            Item.objects.filter(
                queue=queue, external_id__in=[external_id for external_id, _ in chunk]
            ).values_list("external_id", flat=True)
        )
        result.duplicates.extend(sorted(existing))
        now = received_at or timezone.now()
        items = []
        for external_id, values in chunk:
            if external_id in existing:
                continue
            decision = routing.route_decide(queue=queue, rng=rng)
            items.append(
                Item(
                    queue=queue,
                    external_id=external_id,
                    features=values,
                    received_at=now,
                    route=decision.route,
                    judgments_needed=decision.judgments_needed,
                    human_status=decision.human_status,
                )
            )
        with transaction.atomic():
            created = Item.objects.bulk_create(items)
            new = [
                NewItem(item.pk, item.received_at.timestamp(), item.features) for item in created
            ]
            transaction.on_commit(partial(shadow_enqueue, queue_id=queue.pk, items=new))
        result.created += len(items)
    return result


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
        item = candidates.first()
        if item is None:
            return None
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
            raise JudgmentRejected("this item no longer needs a judgment")
        if Judgment.objects.filter(item=locked, inspector=inspector).exists():
            raise JudgmentRejected("you have already judged this item")
        judgment = Judgment.objects.create(
            item=locked, inspector=inspector, label=label, seconds_spent=seconds_spent
        )
        locked.judgment_count += 1
        if locked.judgment_count >= locked.judgments_needed:
            locked.human_status = Item.HumanStatus.COMPLETE
        locked.save(update_fields=["judgment_count", "human_status"])
        Assignment.objects.filter(item=locked, inspector=inspector).delete()
    return judgment


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


def api_token_create(
    *, queue: Queue, name: str = "", created_by: User | None = None
) -> tuple[ApiToken, str]:
    """Create a token for the queue; return it with the raw secret, which is never stored."""
    raw = "slk_" + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        queue=queue,
        name=name,
        prefix=raw[:10],
        token_hash=ApiToken.hash(raw),
        created_by=created_by if created_by is not None and created_by.pk else None,
    )
    return token, raw


def api_token_authenticate(raw: str) -> ApiToken | None:
    """Return the token matching this secret, or None."""
    if not raw or len(raw) > 200:
        return None
    token = ApiToken.objects.select_related("queue").filter(token_hash=ApiToken.hash(raw)).first()
    if token is not None:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token
