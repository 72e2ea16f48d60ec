"""Who a registry command acts for (its --user option)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.core.management.base import CommandError


def actor_from_username(username: str | None) -> User | None:
    """Return the user named by --user, None without it; a clear error for an unknown name."""
    if username is None:
        return None
    try:
        return User.objects.get_by_natural_key(username)
    except User.DoesNotExist:
        raise CommandError(f"no user called '{username}'") from None
