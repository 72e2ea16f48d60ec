"""Audit a change of a user's roles (Django groups), wherever a web request makes it.

Roles change in Django's admin, on the user's page (user.groups) or, the other way round,
through a group's users; neither goes through a service of ours, so a signal records it.
Changes made outside a request (migrations, the demo loader, commands, a shell) are set-up
by someone with the server's access, which an audit log in its database cannot hold to
account; they are not recorded. A sign-in through the identity provider sets the roles its
groups claim give, on behalf of the person signing in (shadowlab.oidc, roles_changed_by).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth.models import Group, User
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from shadowlab.request_actor import request_actor, request_in_progress

ACTION = "user.roles"
_BEFORE = "_shadowlab_roles_before"
# Who changes roles, and on what grounds, where the request's user is not (yet) the one.
_changed_by: ContextVar[tuple[User, str] | None] = ContextVar("roles_changed_by", default=None)


@contextmanager
def roles_changed_by(*, actor: User, evidence: str) -> Iterator[None]:
    """Record role changes made inside this block as actor's, on these grounds."""
    token = _changed_by.set((actor, evidence))
    try:
        yield
    finally:
        _changed_by.reset(token)


def _roles(user_ids: Iterable[int]) -> dict[int, list[str]]:
    roles: dict[int, list[str]] = {user_id: [] for user_id in user_ids}
    rows = Group.user_set.through.objects.filter(user_id__in=list(roles)).values_list(
        "user_id", "group__name"
    )
    for user_id, name in rows:
        roles[user_id].append(name)
    return {user_id: sorted(names) for user_id, names in roles.items()}


def _users_touched(instance: Any, reverse: bool, pk_set: set[int] | None) -> list[int]:
    if not reverse:
        return [instance.pk]  # user.groups.add/remove/clear: one user
    if pk_set is not None:
        return sorted(pk_set)  # group.user_set.add/remove: these users
    return list(instance.user_set.values_list("pk", flat=True))  # group.user_set.clear()


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="shadowlab.role_audit")
def user_roles_changed(
    sender: Any,
    instance: Any,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    **kwargs: Any,
) -> None:
    """Record each user whose groups this change altered, with them before and after."""
    from deployments.audit import audit_record

    if not request_in_progress():
        return
    if action.startswith("pre_"):
        setattr(instance, _BEFORE, _roles(_users_touched(instance, reverse, pk_set)))
        return
    before: dict[int, list[str]] = getattr(instance, _BEFORE, {})
    if not action.startswith("post_") or not before:
        return
    delattr(instance, _BEFORE)
    after = _roles(before)
    changed_by = _changed_by.get()
    actor, evidence = changed_by if changed_by is not None else (request_actor(), "")
    for user in User.objects.filter(pk__in=[pk for pk in before if before[pk] != after[pk]]):
        audit_record(
            actor=actor,
            action=ACTION,
            subject=user,
            before={"user": user.get_username(), "groups": before[user.pk]},
            after={"user": user.get_username(), "groups": after[user.pk]},
            evidence=evidence,
        )
