"""Intake: validate, route and store new items, one at a time or in batches."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from django.db import IntegrityError, transaction
from django.utils import timezone

from deployments import live_routing
from deployments.enqueue import NewItem, shadow_enqueue
from deployments.models import Decision
from inspections.features import FeatureError, features_validate
from inspections.item_insert import item_with_decision_insert
from inspections.models import Item, Queue


class ItemRejected(ValueError):
    """The item cannot be accepted; nothing was stored."""


class ItemDuplicate(ItemRejected):
    def __init__(self, external_id: str, existing_id: int) -> None:
        super().__init__(f"an item with external_id '{external_id}' already exists in this queue")
        self.existing_id = existing_id


def _external_id_clean(external_id: object) -> str:
    """Return the external id trimmed, or raise ItemRejected if it cannot be stored as it is.

    Empty, longer than 200 characters, holding a NUL (PostgreSQL text cannot) or a lone
    UTF-16 surrogate such as \\ud800 (JSON can escape one; no database encoding holds it).
    """
    cleaned = str(external_id).strip()
    if not cleaned or len(cleaned) > 200:
        raise ItemRejected("external_id must be 1 to 200 characters")
    if "\x00" in cleaned:
        raise ItemRejected("external_id must not hold a NUL character (\\u0000)")
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ItemRejected(
            f"external_id must be valid Unicode text: character {exc.start} is a lone "
            f"surrogate (\\u{ord(cleaned[exc.start]):04x}), which no text column can store"
        ) from None
    return cleaned


def item_create(
    *,
    queue: Queue,
    external_id: str,
    features: object,
    received_at: datetime | None = None,
    rng: random.Random | None = None,
    routing_version: int | None = None,
) -> Item:
    """Validate, route and store one item; it is queued for shadow scoring after commit.

    A model asked to decide the item scores it before the transaction opens; its Decision
    is stored with the item (and cached on it: `item.decision`).
    """
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
    routed_items = live_routing.items_route(
        queue=queue,
        entries=[(external_id, values)],
        rng=rng or random,
        routing_version=routing_version,
    )
    (routed,) = routed_items.routes
    try:
        with transaction.atomic():
            item = Item(
                queue=queue,
                external_id=external_id,
                features=values,
                received_at=received_at or timezone.now(),
                **_route_fields(routed),
            )
            item_with_decision_insert(item, routed.decision_row(item))
            new = NewItem(item.pk, item.received_at.timestamp(), values)
            transaction.on_commit(
                partial(
                    shadow_enqueue,
                    queue_id=queue.pk,
                    items=[new],
                    version_ids=routed_items.scoring_version_ids,
                )
            )
    except IntegrityError as exc:
        # Lost a race with a concurrent request carrying the same external_id.
        existing = Item.objects.filter(queue=queue, external_id=external_id).values_list(
            "id", flat=True
        )
        if existing:
            raise ItemDuplicate(external_id, existing[0]) from exc
        raise
    return item


def _route_fields(routed: live_routing.ItemRoute) -> dict[str, object]:
    return {
        "route": routed.route.route,
        "judgments_needed": routed.route.judgments_needed,
        "human_status": routed.route.human_status,
        "audit_sample": routed.route.audit_sample,
        "route_note": routed.route.route_note,
    }


BATCH_MAX_ITEMS = 1000
_BATCH_STORE_ATTEMPTS = 3


class BatchRejected(ValueError):
    """The batch as a whole cannot be taken (empty, too many items); nothing was stored."""


@dataclass(frozen=True)
class BatchItemResult:
    """What became of one item of a batch: 201 stored, 409 duplicate, 400 refused."""

    status: int
    external_id: str | None
    item: Item | None = None
    existing_id: int | None = None
    detail: str = ""


@dataclass
class _Accepted:
    index: int
    external_id: str
    features: list[float]


def _batch_entry(raw: object, width: int) -> tuple[str, list[float]]:
    """Return one batch item's cleaned external_id and features, or raise ItemRejected."""
    if not isinstance(raw, Mapping):
        raise ItemRejected("an item must be an object with external_id and features")
    missing = [name for name in ("external_id", "features") if name not in raw]
    if missing:
        raise ItemRejected(f"{' and '.join(missing)} required")
    if not isinstance(raw["external_id"], str):
        raise ItemRejected("external_id must be a string")
    external_id = _external_id_clean(raw["external_id"])
    try:
        return external_id, features_validate(raw["features"], width=width)
    except FeatureError as exc:
        raise ItemRejected(str(exc)) from exc


def items_intake_batch(
    *,
    queue: Queue,
    items: Sequence[object],
    received_at: datetime | None = None,
    rng: random.Random | None = None,
    routing_version: int | None = None,
) -> list[BatchItemResult]:
    """Validate, route and store up to BATCH_MAX_ITEMS items in one transaction.

    Items are {"external_id", "features"} mappings. Return one result per item, in order:
    201 (stored, with its route and decision), 409 (its external_id is in the queue already
    or earlier in the batch) or 400 (why it was refused). Items a model decides are scored
    before the transaction opens. A database error stores none of them and is raised; an
    empty or oversized batch raises BatchRejected.
    """
    if not items:
        raise BatchRejected("a batch needs at least one item")
    if len(items) > BATCH_MAX_ITEMS:
        raise BatchRejected(
            f"a batch holds at most {BATCH_MAX_ITEMS:,} items, got {len(items):,}: "
            "send the rest in further batches"
        )
    results: list[BatchItemResult | None] = [None] * len(items)
    accepted: list[_Accepted] = []
    first: dict[str, int] = {}
    repeats: list[tuple[int, str]] = []
    for index, raw in enumerate(items):
        try:
            external_id, values = _batch_entry(raw, queue.input_width)
        except ItemRejected as exc:
            given = raw.get("external_id") if isinstance(raw, Mapping) else None
            results[index] = BatchItemResult(
                400, given if isinstance(given, str) else None, detail=str(exc)
            )
            continue
        if external_id in first:
            repeats.append((index, external_id))
            continue
        first[external_id] = index
        accepted.append(_Accepted(index, external_id, values))
    routed = live_routing.items_route(
        queue=queue,
        entries=[(entry.external_id, entry.features) for entry in accepted],
        rng=rng or random,
        routing_version=routing_version,
    )
    stored = _batch_store(
        queue=queue,
        accepted=list(zip(accepted, routed.routes, strict=True)),
        received_at=received_at or timezone.now(),
        version_ids=routed.scoring_version_ids,
    )
    for entry in accepted:
        outcome = stored[entry.external_id]
        if isinstance(outcome, Item):
            results[entry.index] = BatchItemResult(201, entry.external_id, item=outcome)
        else:
            results[entry.index] = BatchItemResult(
                409,
                entry.external_id,
                existing_id=outcome,
                detail=str(ItemDuplicate(entry.external_id, outcome)),
            )
    for index, external_id in repeats:
        earlier = stored[external_id]
        earlier_id = earlier.pk if isinstance(earlier, Item) else earlier
        results[index] = BatchItemResult(
            409,
            external_id,
            existing_id=earlier_id,
            detail=f"external_id '{external_id}' repeats item {first[external_id]} of this "
            "batch (items count from 0)",
        )
    return [result for result in results if result is not None]


def _batch_store(
    *,
    queue: Queue,
    accepted: list[tuple[_Accepted, live_routing.ItemRoute]],
    received_at: datetime,
    version_ids: tuple[int, ...],
) -> dict[str, Item | int]:
    """Store the accepted items in one transaction; map each external_id to its item.

    External ids already in the queue map to the existing item's id instead. The unique
    constraint finds them: the insert is tried first and, if it breaks the constraint,
    rolled back and tried again without the ids taken (a resent batch, or a concurrent
    request that stored one first). Looking them up beforehand cost a tenth of the insert
    on every batch, for the rare one that has any. Any other database error stores nothing
    and is raised.
    """
    outcome: dict[str, Item | int] = {}
    pending = accepted
    for attempt in range(1, _BATCH_STORE_ATTEMPTS + 1):
        # Fresh instances each attempt: a rolled-back insert leaves primary keys behind.
        items = [
            Item(
                queue=queue,
                external_id=entry.external_id,
                features=entry.features,
                received_at=received_at,
                **_route_fields(route),
            )
            for entry, route in pending
        ]
        try:
            with transaction.atomic():
                created = Item.objects.bulk_create(items)
                Decision.objects.bulk_create(
                    [
                        row
                        for item, (_, route) in zip(created, pending, strict=True)
                        if (row := route.decision_row(item)) is not None
                    ]
                )
                new = [NewItem(item.pk, received_at.timestamp(), item.features) for item in created]
                transaction.on_commit(
                    partial(shadow_enqueue, queue_id=queue.pk, items=new, version_ids=version_ids)
                )
        except IntegrityError:
            taken = dict(
                Item.objects.filter(
                    queue=queue, external_id__in=[entry.external_id for entry, _ in pending]
                ).values_list("external_id", "id")
            )
            if not taken or attempt == _BATCH_STORE_ATTEMPTS:
                raise
            outcome.update(taken)
            pending = [(entry, route) for entry, route in pending if entry.external_id not in taken]
            if not pending:
                return outcome
            continue
        outcome.update({item.external_id: item for item in created})
        return outcome
    return outcome


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
    chunk_size: int = BATCH_MAX_ITEMS,
    rng: random.Random | None = None,
    validate_only: bool = False,
    validated: bool = False,
) -> BulkResult:
    """Store many items through batch intake, in chunks, after validating every row first.

    Rows are (external_id, features). If any row is invalid nothing is stored and every
    problem is reported; rows whose external_id already exists are skipped and listed.
    Each chunk (at most BATCH_MAX_ITEMS rows) is one `items_intake_batch` call: routed,
    scored and stored in one transaction.

    Checking first means holding every row until the last is read. A caller that can read
    its rows twice (a file) keeps that bounded: a first pass with validate_only checks them
    and keeps no features, then a pass with validated stores each chunk as soon as it is
    read. A row found invalid in that second pass (the file changed) is reported, and the
    chunks before it stay stored.
    """
    result = BulkResult()
    rng = rng or random.Random()
    size = max(1, min(chunk_size, BATCH_MAX_ITEMS))
    prepared: list[tuple[int, str, list[float]]] = []
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
            values = features_validate(features, width=queue.input_width)
        except FeatureError as exc:
            result.errors.append(f"row {number}: {exc}")
            continue
        if validate_only:
            continue
        prepared.append((number, external_id, values))
        if validated and len(prepared) == size:
            _bulk_chunk_store(queue, prepared, result, received_at=received_at, rng=rng)
            prepared = []
    if validate_only or (result.errors and not validated):
        return result
    for start in range(0, len(prepared), size):
        chunk = prepared[start : start + size]
        _bulk_chunk_store(queue, chunk, result, received_at=received_at, rng=rng)
    return result


def _bulk_chunk_store(
    queue: Queue,
    chunk: list[tuple[int, str, list[float]]],
    result: BulkResult,
    *,
    received_at: datetime | None,
    rng: random.Random,
) -> None:
    """Store one chunk of checked rows through batch intake; add its outcomes to result."""
    outcomes = items_intake_batch(
        queue=queue,
        items=[
            {"external_id": external_id, "features": values} for _, external_id, values in chunk
        ],
        received_at=received_at,
        rng=rng,
    )
    result.created += sum(outcome.status == 201 for outcome in outcomes)
    result.duplicates.extend(
        sorted(outcome.external_id or "" for outcome in outcomes if outcome.status == 409)
    )
    result.errors.extend(
        f"row {number}: {outcome.detail}"
        for (number, _, _), outcome in zip(chunk, outcomes, strict=True)
        if outcome.status == 400
    )
