"""The project's HTTP API: one NinjaAPI, its token auth and error format; apps add routers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import Error as DatabaseLibraryError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError
from ninja.security import HttpBearer

from inspections import services
from inspections.models import ApiToken, Queue
from shadowlab.api_docs import VendoredSwagger, docs_access
from shadowlab.database_interruption import RETRY_AFTER_SECONDS, database_connection_lost


class QueueToken(HttpBearer):
    """A bearer token bound to one queue; only its SHA-256 is stored."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return services.api_token_authenticate(token)


api = NinjaAPI(
    title="ShadowLab API",
    version="1",
    description="Submit items for inspection and read the decisions made on them.",
    auth=QueueToken(),
    docs_url="/docs",
    docs=VendoredSwagger(),
    docs_decorator=docs_access,
    urls_namespace="api",
)


def problem_response(request: HttpRequest, status: int, detail: str, **extra: Any) -> HttpResponse:
    """Return the API's error body, {"detail": ...}, with the given status."""
    return api.create_response(request, {"detail": detail, **extra}, status=status)


def queue_or_problem(request: HttpRequest, slug: str) -> Queue | HttpResponse:
    """Return the queue called slug, or the API's 404 answer saying there is none."""
    slug = slug[: Queue._meta.get_field("slug").max_length]
    queue = Queue.objects.filter(slug=slug).first()
    if queue is None:
        return problem_response(request, 404, f"there is no queue '{slug}'")
    return queue


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
    return problem_response(request, 400, "; ".join(problems) or "invalid request body")


@api.exception_handler(RequestDataTooBig)
def body_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return problem_response(
        request, 413, f"request body is larger than the limit of {limit:,} bytes"
    )


@api.exception_handler(DatabaseLibraryError)
def database_interrupted(request: HttpRequest, exc: DatabaseLibraryError) -> HttpResponse:
    """Answer 503 when the request's database connection was lost (clients send it again)."""
    if not database_connection_lost(exc):
        raise exc
    response = problem_response(
        request,
        503,
        "the connection to the database was interrupted and nothing of this request is "
        "guaranteed stored: send it again (an item stored already answers 409 with its id)",
    )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    # Intake endpoints take a queue's bearer token; the analytics, gate and rollout ones
    # a signed-in session. Say which this request lacked.
    detail = (
        "a valid API token is required: Authorization: Bearer <token>"
        if "Authorization" in request.headers or "/items" in request.path
        else "sign in first: this endpoint reads the browser session of an ml_lead or admin"
    )
    response = problem_response(request, 401, detail)
    response["WWW-Authenticate"] = "Bearer"
    return response
