"""API tokens: issue one with an expiry, revoke it, check a bearer secret on each request."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from deployments.audit import audit_record
from inspections.models import ApiToken, Queue
from shadowlab import roles

TOKEN_USE_RECORDED_EVERY = timedelta(minutes=1)
# The longest lifetime that can be chosen in days; a token that never expires is its own,
# explicit choice rather than a very large number.
API_TOKEN_MAX_DAYS = 3650
NAME_MAX_CHARS = ApiToken._meta.get_field("name").max_length or 100


class ApiTokenRefused(Exception):
    """The bearer secret opens nothing; the message starts with the reason, then says more."""

    INVALID = "invalid token"
    REVOKED = "token revoked"
    EXPIRED = "token expired"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def api_token_days_default() -> int:
    """Return the lifetime in days of a token issued without a choice."""
    return int(settings.SHADOWLAB["API_TOKEN_DAYS"])


def api_token_expiry(*, days: int | None, never_expires: bool, now: datetime) -> datetime | None:
    """Return when a token issued now expires; raise ValueError for a lifetime out of range."""
    if never_expires:
        if days is not None:
            raise ValueError("choose a lifetime in days or no expiry, not both")
        return None
    if days is None:
        days = api_token_days_default()
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= API_TOKEN_MAX_DAYS:
        raise ValueError(
            f"a token's lifetime is a whole number of days from 1 to {API_TOKEN_MAX_DAYS}"
        )
    return now + timedelta(days=days)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


def api_token_document(token: ApiToken, *, now: datetime) -> dict[str, Any]:
    """Return what the audit log keeps of a token (never its secret or hash)."""
    return {
        "queue": token.queue.slug,
        "name": token.name,
        "prefix": token.prefix,
        "state": token.state(now),
        "expires_at": _when(token.expires_at),
        "revoked_at": _when(token.revoked_at),
        "revoked_by": token.revoked_by.get_username() if token.revoked_by else None,
    }


def api_token_create(
    *,
    queue: Queue,
    name: str = "",
    created_by: User | None = None,
    days: int | None = None,
    never_expires: bool = False,
) -> tuple[ApiToken, str]:
    """Issue a token for the queue; return it with the raw secret, which is never stored.

    It expires after days (the API_TOKEN_DAYS setting if None), or never if never_expires.
    created_by None is the system (a command run without --user); a person needs the
    right to issue tokens. Raise PermissionDenied or ValueError; nothing is stored then.
    """
    if created_by is not None and not created_by.has_perm(roles.ISSUE_API_TOKENS):
        raise PermissionDenied("issuing API tokens needs the admin role")
    name = name.strip()
    if len(name) > NAME_MAX_CHARS:
        raise ValueError(f"a token's name may be at most {NAME_MAX_CHARS} characters")
    now = timezone.now()
    expires_at = api_token_expiry(days=days, never_expires=never_expires, now=now)
    raw = "slk_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            queue=queue,
            name=name,
            prefix=raw[:10],
            token_hash=ApiToken.hash(raw),
            created_by=created_by if created_by is not None and created_by.pk else None,
            expires_at=expires_at,
        )
        audit_record(
            actor=created_by,
            action="api_token.issue",
            subject=token,
            after=api_token_document(token, now=now),
            queue=queue,
        )
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: User) -> ApiToken:
    """Revoke the token: every request with it is refused from the moment this commits.

    Revoking a revoked token changes and records nothing. Raise PermissionDenied unless
    the actor may revoke tokens.
    """
    if not actor.has_perm(roles.REVOKE_API_TOKENS):
        raise PermissionDenied("revoking API tokens needs the admin role")
    with transaction.atomic():
        locked = (
            ApiToken.objects.select_for_update(of=("self",))
            .select_related("queue", "revoked_by")
            .get(pk=token.pk)
        )
        if locked.revoked_at is not None:
            return locked
        now = timezone.now()
        before = api_token_document(locked, now=now)
        locked.revoked_at = now
        locked.revoked_by = actor
        locked.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            actor=actor,
            action="api_token.revoke",
            subject=locked,
            before=before,
            after=api_token_document(locked, now=now),
            queue=locked.queue,
        )
    return locked


def api_token_authenticate(raw: str) -> ApiToken:
    """Return the token matching this secret if it may be used now; raise ApiTokenRefused.

    Nothing is cached: a revocation or an expiry holds from the next request on.
    """
    if not raw or len(raw) > 200:
        raise ApiTokenRefused(ApiTokenRefused.INVALID, "no API token has this secret")
    # The queue's routing version comes in the same query (intake routes by it).
    token = (
        ApiToken.objects.select_related("queue", "queue__rollout_control")
        .filter(token_hash=ApiToken.hash(raw))
        .first()
    )
    if token is None:
        raise ApiTokenRefused(ApiTokenRefused.INVALID, "no API token has this secret")
    now = timezone.now()
    state = token.state(now)
    if state == ApiToken.State.REVOKED:
        assert token.revoked_at is not None
        raise ApiTokenRefused(
            ApiTokenRefused.REVOKED,
            f"{token.prefix}… was revoked at {token.revoked_at:%Y-%m-%d %H:%M} UTC; "
            "ask an admin for a new one",
        )
    if state == ApiToken.State.EXPIRED:
        assert token.expires_at is not None
        raise ApiTokenRefused(
            ApiTokenRefused.EXPIRED,
            f"{token.prefix}… expired at {token.expires_at:%Y-%m-%d %H:%M} UTC; "
            "ask an admin for a new one",
        )
    stale = now - TOKEN_USE_RECORDED_EVERY
    if token.last_used_at is None or token.last_used_at <= stale:
        # At most one write a minute per token, and none at all in between (the row just
        # read says whether one is due): a write and its commit on every intake request
        # would cost more than the item itself, for a time shown to the minute. The
        # condition is repeated in the UPDATE so that concurrent requests write it once.
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=token.pk
        ).update(last_used_at=now)
        token.last_used_at = now
    return token


TOKENS_PAGE_SIZE = 50
TOKENS_PAGE_MAX = 10_000


def api_tokens_page(*, queue: Queue | None, page: int) -> Page[ApiToken]:
    """Return one page of tokens, by queue, newest first; a page past the end is the last."""
    tokens = ApiToken.objects.select_related("queue", "created_by", "revoked_by").order_by(
        "queue__name", "queue_id", "-created_at", "-id"
    )
    if queue is not None:
        tokens = tokens.filter(queue=queue)
    paginator = Paginator(tokens, TOKENS_PAGE_SIZE)
    return paginator.page(min(max(page, 1), paginator.num_pages))
