"""The intake API: API clients submit items to their queue and read the human decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from inspections import selectors, services
from inspections.models import ApiToken, Item, Queue
from shadowlab.api import problem_response

router = Router()


class Problem(Schema):
    detail: str


class DuplicateProblem(Schema):
    detail: str
    id: int


class ItemIn(Schema):
    external_id: str = Field(..., description="Your identifier, unique within the queue.")
    features: list[Any] = Field(..., description="The item's feature vector: finite numbers.")


class ItemCreated(Schema):
    id: int
    route: str = Field(..., description="'human' while inspectors decide the queue's items.")
    decision: str | None = Field(None, description="Null while humans decide.")


class JudgmentOut(Schema):
    label: str
    created_at: datetime


class ItemOut(Schema):
    id: int
    queue: str
    external_id: str
    received_at: datetime
    route: str
    status: str = Field(..., description="pending, complete or disputed (judgments disagree).")
    judgments_needed: int
    decision: str | None
    judgments: list[JudgmentOut]


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
            queue=queue, external_id=payload.external_id, features=payload.features
        )
    except services.ItemDuplicate as exc:
        return Status(409, {"detail": str(exc), "id": exc.existing_id})
    except services.ItemRejected as exc:
        return Status(400, {"detail": str(exc)})
    return Status(201, {"id": item.pk, "route": item.route, "decision": None})


@router.get(
    "/v1/items/{item_id}",
    response={200: ItemOut, 401: Problem, 403: Problem, 404: Problem},
    summary="Read an item's status and human decision",
)
def item_read(request: HttpRequest, item_id: int) -> Any:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    item = Item.objects.select_related("queue").filter(pk=item_id).first()
    if item is None:
        return Status(404, {"detail": f"there is no item {item_id}"})
    if item.queue_id != token.queue_id:
        return Status(403, {"detail": "this token is not valid for that item's queue"})
    judgments = list(item.judgments.order_by("created_at").values("label", "created_at"))
    decided = selectors.item_decision(item, [j["label"] for j in judgments])
    return Status(
        200,
        {
            "id": item.pk,
            "queue": item.queue.slug,
            "external_id": item.external_id,
            "received_at": item.received_at,
            "route": item.route,
            "status": decided.status,
            "judgments_needed": item.judgments_needed,
            "decision": decided.decision,
            "judgments": judgments,
        },
    )
