"""Refuse text no view can use before any view sees it: NUL characters in the URL or a form.

PostgreSQL cannot store or compare a NUL character (0x00) in text: a query parameter or form
field holding one, handed to a filter, would fail in the database driver (a 500 on
PostgreSQL, and silently accepted on SQLite). No name, label, date or note has a use for it,
so the request is refused with 400 naming the parameter. JSON bodies are checked where they
are read (intake refuses such an item and keeps the rest of a batch), and multipart bodies
are left unread here: an upload view installs its size cap before the body is parsed. A NUL
that still reaches the driver from one of those is answered 400 too, from the error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from django.db import DataError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse

NUL = "\x00"
_FORM = "application/x-www-form-urlencoded"


def _with_nul(pairs: Iterable[tuple[str, list[str]]]) -> str | None:
    """Return the name of the first parameter whose name or a value holds a NUL, or None."""
    for name, values in pairs:
        if NUL in name or any(NUL in value for value in values):
            return name.replace(NUL, "\\x00")[:40]
    return None


def nul_problem(request: HttpRequest) -> str | None:
    """Return why the request's path, query or form holds a NUL character, or None."""
    if NUL in request.path_info:
        return "the URL path holds a NUL character (%00)"
    name = _with_nul(request.GET.lists())
    if name is not None:
        return f"query parameter {name!r} holds a NUL character (%00)"
    if request.method == "POST" and request.content_type == _FORM:
        name = _with_nul(request.POST.lists())
        if name is not None:
            return f"form field {name!r} holds a NUL character (%00)"
    return None


class NulCharacterGuardMiddleware:
    """Answer 400 to a request whose path, query string or form fields hold a NUL."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        problem = nul_problem(request)
        if problem is None:
            return self.get_response(request)
        return _refusal(request, f"{problem}; no parameter accepts one")

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DataError) and "NUL" in str(exception):
            # psycopg refuses to send it: "PostgreSQL text fields cannot contain NUL (0x00)".
            return _refusal(request, "a text field holds a NUL character, which cannot be stored")
        return None


def _refusal(request: HttpRequest, detail: str) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": detail}, status=400)
    return HttpResponse(detail, status=400, content_type="text/plain; charset=utf-8")
