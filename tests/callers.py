"""Who calls in the permission tables: API tokens of every kind, made through the services."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from inspections.api_tokens import api_token_create, api_token_revoke
from inspections.models import ApiToken, Queue

# A token of the queue the table's paths name (digits), of another queue (parts), one that
# an admin revoked, and one past its expiry.
TOKEN_KINDS = ("digits_token", "parts_token", "revoked_token", "expired_token")


def token_secret(kind: str, *, queue: Queue, other_queue: Queue, admin: User) -> str:
    """Issue a token of this kind and return its secret."""
    if kind not in TOKEN_KINDS:
        raise ValueError(f"no token kind {kind!r}")
    token, raw = api_token_create(
        queue=other_queue if kind == "parts_token" else queue, name=kind, days=30
    )
    if kind == "revoked_token":
        api_token_revoke(token=token, actor=admin)
    elif kind == "expired_token":
        # Issued a month ago for 30 days, as the clock would have it now.
        now = timezone.now()
        ApiToken.objects.filter(pk=token.pk).update(
            created_at=now - timedelta(days=30, seconds=1), expires_at=now - timedelta(seconds=1)
        )
    return raw
