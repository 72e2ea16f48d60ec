"""The request being served, for changes that reach no service that could be told who acts.

Role changes are made in Django's admin, which saves a user's groups itself; the signal
that audits them (shadowlab.role_audit) reads the person from here.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponseBase

_request: ContextVar[HttpRequest | None] = ContextVar("shadowlab_request", default=None)


class RequestActorMiddleware:
    """Make the request being served known to code it calls, for its duration only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


def request_in_progress() -> bool:
    """Whether this code runs on behalf of a web request (not a command or a migration)."""
    return _request.get() is not None


def request_actor() -> User | None:
    """Return the signed-in user of the request being served, or None."""
    request = _request.get()
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return User.objects.get(pk=user.pk) if not isinstance(user, User) else user
