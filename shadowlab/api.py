"""The project's HTTP API: one NinjaAPI, its token auth and error format; apps add routers."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DataError
from django.db import Error as DatabaseLibraryError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja import security as ninja_security
from ninja.errors import (
    AuthenticationError,
    AuthorizationError,
    HttpError,
    Throttled,
    ValidationError,
)
from ninja.openapi.schema import OpenAPISchema
from ninja.security import HttpBearer

from inspections import services
from inspections.api_tokens import ApiTokenRefused
from inspections.models import ApiToken, Queue
from shadowlab.api_docs import VendoredSwagger, docs_access
from shadowlab.database_interruption import RETRY_AFTER_SECONDS, database_connection_lost
from shadowlab.throttling import ApiTokenThrottle

# Answers any operation may give besides those it declares: every error body is the same
# {"detail": ...} (problem_response), so the schema says so once for all operations.
COMMON_PROBLEMS = {
    "400": "The request is malformed: a parameter or the body is invalid.",
    "401": "No valid credentials: a token or a signed-in session is required.",
    "403": "The caller may not do this (role, queue, or CSRF check).",
    "404": "The named queue, item or record does not exist.",
    "429": "Too many requests: wait for the seconds in Retry-After.",
    "503": "The database is out of reach for a moment: retry after Retry-After.",
}
WRITE_PROBLEMS = {
    "409": "The request conflicts with the current state.",
    "413": "The request body is larger than the limit.",
}
PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}


class ShadowLabAPI(NinjaAPI):
    """The NinjaAPI whose schema lists the error answers every operation may give."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                problems = dict(COMMON_PROBLEMS)
                if method in ("post", "put", "patch", "delete"):
                    problems.update(WRITE_PROBLEMS)
                responses = operation.setdefault("responses", {})
                declared = {str(code) for code in responses}
                for code, description in problems.items():
                    if code not in declared:
                        responses[code] = {
                            "description": description,
                            "content": {"application/json": {"schema": PROBLEM_SCHEMA}},
                        }
        return schema


class TokenRefused(AuthenticationError):
    """A bearer token was sent and refused; the message says why (invalid, revoked, expired)."""


class QueueToken(HttpBearer):
    """A bearer token bound to one queue; only its SHA-256 is stored."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        try:
            api_token = services.api_token_authenticate(token)
        except ApiTokenRefused as exc:
            raise TokenRefused(401, str(exc)) from None
        # A queue named in the path is checked here, before the body is read: a token of
        # another queue is refused without learning anything from the body's validation.
        match = request.resolver_match
        slug = match.kwargs.get("slug") if match is not None else None
        if slug is not None and slug != api_token.queue.slug:
            slug = str(slug)[: Queue._meta.get_field("slug").max_length]
            if not Queue.objects.filter(slug=slug).exists():
                raise HttpError(404, f"there is no queue '{slug}'")
            raise AuthorizationError(403, "this token is not valid for that queue")
        return api_token


class SessionAuth(ninja_security.SessionAuth):
    """A signed-in session whose user holds one permission, checked before the body is read.

    Without a session the answer is 401; signed in without the permission, 403 with the
    refusal. Either way before ninja validates the body, so a caller who may not change
    something learns nothing from its validation. Named as ninja's session auth so that the
    OpenAPI document keeps one session scheme.
    """

    def __init__(self, permission: str, refusal: str) -> None:
        super().__init__()
        self.permission = permission
        self.refusal = refusal

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if user is not None and not user.has_perm(self.permission):
            raise AuthorizationError(403, self.refusal)
        return user


def session_with(permission: str, refusal: str) -> SessionAuth:
    """Return the auth of a session operation that needs this permission."""
    return SessionAuth(permission, refusal)


api = ShadowLabAPI(
    title="ShadowLab API",
    version="1",
    description="Submit items for inspection and read the decisions made on them.",
    auth=QueueToken(),
    throttle=[ApiTokenThrottle()],
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
    # a signed-in session. Say which this request lacked, or why its token was refused.
    if isinstance(exc, TokenRefused):
        detail = exc.message
    elif "Authorization" in request.headers or "/items" in request.path:
        detail = "a valid API token is required: Authorization: Bearer <token>"
    else:
        detail = "sign in first: this endpoint reads the browser session of an ml_lead or admin"
    response = problem_response(request, 401, detail)
    # RFC 6750: a token that was sent and refused is an "invalid_token" error.
    refused = isinstance(exc, TokenRefused)
    response["WWW-Authenticate"] = 'Bearer error="invalid_token"' if refused else "Bearer"
    return response


@api.exception_handler(Throttled)
def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    # Ninja adds Retry-After to this answer.
    return problem_response(
        request,
        429,
        f"too many requests with this API token: at most {settings.SHADOWLAB_API_RATE}",
    )


log = logging.getLogger("shadowlab.api")


@api.exception_handler(DataError)
def nul_refused(request: HttpRequest, exc: DataError) -> HttpResponse:
    # A NUL character in a JSON string (a note, a reason) that a schema let through: the
    # PostgreSQL driver refuses to send it. The request's fault, so 400; any other data
    # error is the server's and stays a 500.
    if "NUL" not in str(exc):
        raise exc
    log.warning("refused a NUL character in %s %s", request.method, request.path)
    return problem_response(
        request, 400, "a text value holds a NUL character (\\u0000), which cannot be stored"
    )
