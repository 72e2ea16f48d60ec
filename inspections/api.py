"""The intake API: API clients submit items to their queue and read the human decision."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import Field, NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, ValidationError
from ninja.security import HttpBearer

from inspections import selectors, services
from inspections.models import ApiToken, Item, Queue


class QueueToken(HttpBearer):
    """A bearer token bound to one queue; only its SHA-256 is stored."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return services.api_token_authenticate(token)


api = NinjaAPI(
    title="ShadowLab API",
    version="1",
    description="Submit items for inspection and read the decisions made on them.",
    auth=QueueToken(),
    docs_url=None,
    urls_namespace="api",
)


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


def _error(request: HttpRequest, status: int, detail: str, **extra: Any) -> HttpResponse:
    return api.create_response(request, {"detail": detail, **extra}, status=status)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = []
    for error in exc.errors:
        where = ".".join(
            str(part) for part in error.get("loc", ()) if part not in ("body", "payload")
        )
        problems.append(
            f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "")
        )
    return _error(request, 400, "; ".join(problems) or "invalid request body")


@api.exception_handler(RequestDataTooBig)
def body_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    from django.conf import settings

    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _error(request, 413, f"request body is larger than the limit of {limit:,} bytes")


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = _error(request, 401, "a valid API token is required: Authorization: Bearer <token>")
    response["WWW-Authenticate"] = "Bearer"
    return response


def _queue_for(request: HttpRequest, slug: str) -> Queue | HttpResponse:
    token: ApiToken = request.auth  # type: ignore[attr-defined]
    if token.queue.slug != slug:
        if not Queue.objects.filter(slug=slug).exists():
            return _error(request, 404, f"there is no queue '{slug}'")
        return _error(request, 403, "this token is not valid for that queue")
    return token.queue


@api.post(
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


@api.get(
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
