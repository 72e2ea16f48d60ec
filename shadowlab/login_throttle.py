"""Sign-in throttling with django-axes: the lockout in the audit log, unlocking, Redis outages.

After AXES_FAILURE_LIMIT failed sign-ins for one username from one address (the product's
login page and the admin's alike), that pair is locked out for AXES_COOLOFF_TIME; other
addresses can still sign in as that user, so an attacker cannot lock a colleague out.
"""

from __future__ import annotations

import logging
from typing import Any

from axes.handlers.cache import AxesCacheHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from axes.utils import reset
from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from redis.exceptions import RedisError

from deployments.audit import audit_record
from deployments.models import AuditEvent

log = logging.getLogger(__name__)

LOCKOUT = "login.lockout"
UNLOCK = "login.unlock"
# Lockouts of one user an unlock looks back over: each is one address to clear.
UNLOCK_LOOKBACK = 200


class ResilientCacheHandler(AxesCacheHandler):
    """Axes' cache handler that lets sign-ins through while the cache (Redis) is down.

    Failing closed would turn a Redis restart into nobody being able to sign in, while the
    pages people are signed in to keep working on the database; the outage is logged.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        try:
            return int(super().get_failures(request, credentials))
        except (RedisError, OSError) as exc:
            log.warning("sign-in throttling is off: the cache did not answer (%s)", exc)
            return 0

    def user_login_failed(
        self,
        sender: Any,
        credentials: dict[str, Any],
        request: HttpRequest | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            super().user_login_failed(sender, credentials, request, **kwargs)
        except (RedisError, OSError) as exc:
            log.warning("a failed sign-in was not counted: the cache did not answer (%s)", exc)

    def user_logged_in(self, sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
        try:
            super().user_logged_in(sender, request, user, **kwargs)
        except (RedisError, OSError) as exc:
            log.warning(
                "earlier failed sign-ins were not cleared: the cache did not answer (%s)", exc
            )


def login_lockout_record(*, username: str, ip_address: str, failures: int) -> AuditEvent:
    """Audit that this username was locked out of signing in from this address."""
    user = User.objects.filter(username=username).first()
    cool_off = settings.AXES_COOLOFF_TIME
    return audit_record(
        actor=None,
        action=LOCKOUT,
        # A username nobody has is locked out all the same (password spraying): the event
        # names it, with no user row behind it.
        subject=user if user is not None else User(username=username[:150]),
        after={
            "username": username[:150],
            "ip_address": ip_address,
            "failures": failures,
            "cool_off_minutes": cool_off.total_seconds() / 60 if cool_off else None,
        },
    )


def login_unlock(*, user: User, actor: User) -> list[str]:
    """Lift the user's sign-in lockouts from every address; return the addresses cleared.

    The cache keeps failures per username and address and cannot be listed, so the
    addresses come from the user's recent lockout events.
    """
    addresses = sorted(
        {
            str(address)
            for address in AuditEvent.objects.filter(
                action=LOCKOUT, subject_type=User._meta.label, subject_id=str(user.pk)
            )
            .order_by("-created_at")
            .values_list("after__ip_address", flat=True)[:UNLOCK_LOOKBACK]
            if address
        }
    )
    for address in addresses:
        reset(ip=address, username=user.get_username())
    # The database handler clears every address of the username at once; to the cache
    # handler this names no key and clears nothing.
    reset(username=user.get_username())
    audit_record(
        actor=actor,
        action=UNLOCK,
        subject=user,
        before={"locked_out_from": addresses},
        after={"locked_out_from": []},
    )
    return addresses


def lockout_audit(
    sender: Any, request: HttpRequest, username: str | None, ip_address: str, **kwargs: Any
) -> None:
    """Audit a lockout once, when the failure that reaches the limit is counted.

    Axes signals again on every further failure of a locked-out pair; one event per
    lockout keeps an attacker who goes on trying from filling the audit log.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    limit = get_failure_limit(request, getattr(request, "axes_credentials", None))
    if failures != limit:
        return
    login_lockout_record(username=username or "", ip_address=ip_address, failures=failures)


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """Answer a locked-out sign-in: 429, how long the lockout lasts, and who can lift it."""
    cool_off = get_cool_off(request)
    minutes = round(cool_off.total_seconds() / 60) if cool_off else None
    response = render(
        request,
        "registration/locked_out.html",
        {
            "username": get_client_username(request, credentials) or "",
            "failure_limit": get_failure_limit(request, credentials),
            "minutes": minutes,
        },
        status=429,
    )
    if cool_off:
        response["Retry-After"] = str(int(cool_off.total_seconds()))
    return response
