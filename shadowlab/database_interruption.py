"""Requests whose database connection is cut under them: run again, or answered 503.

A connection can die mid-request (PostgreSQL restarted or failed over, an administrator's
pg_terminate_backend, a network blip); Django's health check only catches one that died
between requests. A page that only reads (GET, HEAD) is simply run again on a new
connection; anything else, or a page that fails again, gets a 503 with Retry-After instead
of a 500, so that browsers and API clients know to try again.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase

log = logging.getLogger("shadowlab.database")

RETRY_AFTER_SECONDS = 1
PAGE_RETRIES = 2
SAFE_METHODS = ("GET", "HEAD")


# PostgreSQL error classes of a connection that is gone: 08 (connection exception) and the
# server shutting the session (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot
# connect now). A client-side failure (the server closed the socket) carries no SQLSTATE.
_LOST_SQLSTATE_PREFIXES = ("08", "57P01", "57P02", "57P03")


def database_connection_lost(exc: BaseException) -> bool:
    """Return whether exc means the request's database connection is gone.

    Other operational errors (a lock not granted, a statement timeout, a deadlock, SQLite's
    "database is locked") leave the connection usable and are not a lost connection. The
    connection's state cannot tell: leaving a failed atomic block, Django has already
    connected again.
    """
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if cause is None or not hasattr(cause, "sqlstate"):
        return False  # not from PostgreSQL (SQLite's errors say nothing of connections)
    sqlstate = cause.sqlstate
    return sqlstate is None or sqlstate.startswith(_LOST_SQLSTATE_PREFIXES)


def _broken_connections_close() -> None:
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block and not conn.is_usable():
            with contextlib.suppress(Exception):
                conn.close()


def unavailable_response(detail: str, *, content_type: str = "text/plain") -> HttpResponse:
    response = HttpResponse(detail, status=503, content_type=content_type)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseInterruptionMiddleware:
    """Run a read-only page again when its database connection was lost; else answer 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if not database_connection_lost(exception):
            return None
        _broken_connections_close()
        match = request.resolver_match
        if request.method in SAFE_METHODS and match is not None:
            for attempt in range(1, PAGE_RETRIES + 1):
                try:
                    response = match.func(request, *match.args, **match.kwargs)
                    render = getattr(response, "render", None)
                    if callable(render) and not getattr(response, "is_rendered", True):
                        response = render()
                except Exception as exc:
                    if not database_connection_lost(exc):
                        raise
                    _broken_connections_close()
                    continue
                log.warning(
                    "database connection lost during %s %s: run again, attempt %d",
                    request.method,
                    request.path,
                    attempt + 1,
                )
                return response
        log.warning(
            "database connection lost during %s %s: answered 503", request.method, request.path
        )
        return unavailable_response(
            "The connection to the database was interrupted. Nothing of this request is "
            "guaranteed to be saved: please try again in a moment."
        )
