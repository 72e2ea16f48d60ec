"""The intake API: API clients submit items to their queue and read who decided what.

API clients are machines of their queue: they read the model's decision on the items it
decided. Inspectors never reach this API (it takes a queue's token, not a session).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from deployments.live_routing import decision_public
from deployments.models import Decision, RolloutControl
from inspections import selectors, services
from inspections.models import ApiToken, Item, Queue
from shadowlab.api import api, problem_response

router = Router()

log = logging.getLogger("shadowlab.intake")


class Problem(Schema):
    detail: str


class DuplicateProblem(Schema):
    detail: str
    id: int


class ItemIn(Schema):
    external_id: str = Field(..., description="Your identifier, unique within the queue.")
    features: list[Any] = Field(..., description="The item's feature vector: finite numbers.")


class ModelDecision(Schema):
    label: str
    model: str = Field(..., description="The version that decided, as <name>:<version>.")
    confidence: float


ROUTE_HELP = (
    "'model' when a canary or live model version decided the item, 'human' when inspectors do."
)
DECISION_HELP = "The model's decision on a model-routed item; null when inspectors decide it."
NOTE_HELP = (
    "Why inspectors decide an item a model could have decided (kill switch, deferral, model "
    "failure); empty otherwise."
)


class ItemCreated(Schema):
    id: int
    route: str = Field(..., description=ROUTE_HELP)
    decision: ModelDecision | None = Field(None, description=DECISION_HELP)
    route_note: str = Field("", description=NOTE_HELP)


class JudgmentOut(Schema):
    label: str
    created_at: datetime


class ItemOut(Schema):
    id: int
    queue: str
    external_id: str
    received_at: datetime
    route: str = Field(..., description=ROUTE_HELP)
    status: str = Field(
        ...,
        description="complete (decided), pending (awaiting inspectors) or disputed (their "
        "judgments disagree).",
    )
    judgments_needed: int
    decision: str | None = Field(
        ..., description="The label that stands: the model's, or the inspectors' agreed one."
    )
    decided_by: str | None = Field(
        ...,
        description="Who decided: the model version as <name>:<version>, 'inspectors', or "
        "null while inspectors have not judged it.",
    )
    route_note: str = Field("", description=NOTE_HELP)
    judgments: list[JudgmentOut] = Field(
        ..., description="Inspectors' judgments: of an item they decide, or of a model's audit."
    )


class BatchIn(Schema):
    items: list[Any] = Field(
        ...,
        description=f"Up to {services.BATCH_MAX_ITEMS:,} items, each an object with "
        "external_id and features as for one item.",
    )


class BatchItemOut(Schema):
    status: int = Field(..., description="201 stored, 409 duplicate, 400 refused.")
    external_id: str | None
    id: int | None = Field(None, description="The stored item, or the existing one for a 409.")
    route: str | None = Field(None, description=ROUTE_HELP)
    decision: ModelDecision | None = Field(None, description=DECISION_HELP)
    route_note: str = Field("", description=NOTE_HELP)
    detail: str = Field("", description="Why the item was refused or is a duplicate.")


class BatchOut(Schema):
    created: int
    duplicates: int
    refused: int
    results: list[BatchItemOut] = Field(..., description="One per item, in request order.")


def _model_decision(item: Item) -> dict[str, object] | None:
    """Return the model's decision on a model-routed item (its Decision is cached on it)."""
    if item.route != Item.Route.MODEL:
        return None
    try:
        decision: Decision = item.decision  # type: ignore[attr-defined]
    except Decision.DoesNotExist:
        return None
    return decision_public(decision)


def _created(item: Item) -> dict[str, Any]:
    return {
        "id": item.pk,
        "route": item.route,
        "decision": _model_decision(item),
        "route_note": item.route_note,
    }


def _routing_version(queue: Queue) -> int:
    """Return the queue's routing version, read with the token (0 before any rollout)."""
    try:
        control: RolloutControl = queue.rollout_control  # type: ignore[attr-defined]
    except RolloutControl.DoesNotExist:
        return 0
    return control.routing_version


def _queue_for(request: HttpRequest, slug: str) -> Queue | HttpResponse:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    if token.queue.slug != slug:
        if not Queue.objects.filter(slug=slug).exists():
            return problem_response(request, 404, f"there is no queue '{slug}'")
        return problem_response(request, 403, "this token is not valid for that queue")
    return token.queue


@router.post(
    "/v1/queues/{slug}/items",
    response={
        201: ItemCreated,
        400: Problem,
        401: Problem,
        403: Problem,
        404: Problem,
        409: DuplicateProblem,
        413: Problem,
    },
    summary="Submit an item",
)
def item_submit(request: HttpRequest, slug: str, payload: ItemIn) -> Any:
    queue = _queue_for(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    try:
        item = services.item_create(
            queue=queue,
            external_id=payload.external_id,
            features=payload.features,
            routing_version=_routing_version(queue),
        )
    except services.ItemDuplicate as exc:
        return Status(409, {"detail": str(exc), "id": exc.existing_id})
    except services.ItemRejected as exc:
        return Status(400, {"detail": str(exc)})
    return Status(201, _created(item))


@router.post(
    "/v1/queues/{slug}/items:batch",
    response={
        200: BatchOut,
        400: Problem,
        401: Problem,
        403: Problem,
        404: Problem,
        413: Problem,
        503: Problem,
    },
    summary="Submit a batch of items",
    description=(
        f"Up to {services.BATCH_MAX_ITEMS:,} items in one request, routed and scored as "
        "single items are and stored in one transaction. The answer has one result per item, "
        "in request order: 201 stored (with its route and decision), 409 duplicate (in the "
        "queue already, or earlier in the batch) or 400 refused (with the reason). If the "
        "database fails, nothing is stored and the answer is 503."
    ),
)
def items_batch_submit(request: HttpRequest, slug: str, payload: BatchIn) -> Any:
    queue = _queue_for(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    try:
        outcomes = services.items_intake_batch(
            queue=queue, items=payload.items, routing_version=_routing_version(queue)
        )
    except services.BatchRejected as exc:
        return Status(400, {"detail": str(exc)})
    except DatabaseError as exc:
        log.exception("batch intake for %s failed", queue.slug)
        return Status(
            503,
            {
                "detail": f"the database could not store the batch ({type(exc).__name__}); "
                "nothing was stored: send it again"
            },
        )
    results = []
    for outcome in outcomes:
        row: dict[str, Any] = {
            "status": outcome.status,
            "external_id": outcome.external_id,
            "detail": outcome.detail,
        }
        if outcome.item is not None:
            row.update(_created(outcome.item))
        elif outcome.existing_id is not None:
            row["id"] = outcome.existing_id
        results.append(row)
    body = {
        "created": sum(outcome.status == 201 for outcome in outcomes),
        "duplicates": sum(outcome.status == 409 for outcome in outcomes),
        "refused": sum(outcome.status == 400 for outcome in outcomes),
        "results": results,
    }
    # Rendered as built, not re-validated into BatchOut (which documents it): pydantic took a
    # fifth of a 1,000-item request on the way out.
    return api.create_response(request, body, status=200)


@router.get(
    "/v1/items/{item_id}",
    response={200: ItemOut, 401: Problem, 403: Problem, 404: Problem},
    summary="Read an item's status, its decision and who made it",
)
def item_read(request: HttpRequest, item_id: int) -> Any:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    item = (
        Item.objects.select_related("queue", "decision__model_version").filter(pk=item_id).first()
    )
    if item is None:
        return Status(404, {"detail": f"there is no item {item_id}"})
    if item.queue_id != token.queue_id:
        return Status(403, {"detail": "this token is not valid for that item's queue"})
    judgments = list(item.judgments.order_by("created_at").values("label", "created_at"))
    model_decision = _model_decision(item)
    if model_decision is not None:
        status, label, decided_by = "complete", model_decision["label"], model_decision["model"]
    else:
        decided = selectors.item_decision(item, [j["label"] for j in judgments])
        status, label = decided.status, decided.decision
        decided_by = None if decided.status == "pending" else "inspectors"
    return Status(
        200,
        {
            "id": item.pk,
            "queue": item.queue.slug,
            "external_id": item.external_id,
            "received_at": item.received_at,
            "route": item.route,
            "status": status,
            "judgments_needed": item.judgments_needed,
            "decision": label,
            "decided_by": decided_by,
            "route_note": item.route_note,
            "judgments": judgments,
        },
    )
