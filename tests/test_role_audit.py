"""A change of a user's roles (Django groups) is audited with who made it, before and after."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from deployments.models import AuditEvent
from shadowlab import roles
from shadowlab.request_actor import RequestActorMiddleware, request_in_progress

pytestmark = [pytest.mark.django_db, pytest.mark.security]


def _group(name: str) -> Group:
    roles.groups_sync()
    return Group.objects.get(name=name)


def _as(user: User, change: Callable[[], None]) -> None:
    """Make the change while serving a request of this user, through the real middleware."""
    request = RequestFactory().post("/somewhere")
    request.user = user

    def view(request: HttpRequest) -> HttpResponse:
        change()
        return HttpResponse()

    RequestActorMiddleware(view)(request)


@pytest.fixture
def root(db) -> User:
    return User.objects.create_superuser("root", password="x")


def test_changing_a_users_groups_in_the_django_admin_is_audited_with_before_and_after(
    client_for, root, inspector
):
    AuditEvent.objects.all().delete()
    lead_group = _group(roles.ML_LEAD)
    response = client_for(root).post(
        f"/admin/auth/user/{inspector.pk}/change/",
        {
            "username": inspector.username,
            "is_active": "on",
            "groups": [lead_group.pk],
            "date_joined_0": "2026-01-05",
            "date_joined_1": "09:00:00",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(inspector.groups.values_list("name", flat=True)) == [roles.ML_LEAD]
    events = list(AuditEvent.objects.filter(action="user.roles").order_by("id"))
    assert events, "no audit event for the role change"
    assert {event.actor for event in events} == {root}
    assert {event.subject_id for event in events} == {str(inspector.pk)}
    assert events[0].before == {"user": "inspector1", "groups": [roles.INSPECTOR]}
    assert events[-1].after == {"user": "inspector1", "groups": [roles.ML_LEAD]}
    assert all(event.before != event.after for event in events)


def test_adding_users_to_a_group_from_the_group_side_is_audited_for_each_user(
    admin_user, inspector, outsider
):
    AuditEvent.objects.all().delete()
    admin_group = _group(roles.ADMIN)

    _as(admin_user, lambda: admin_group.user_set.add(inspector, outsider))

    events = {e.subject: e for e in AuditEvent.objects.filter(action="user.roles")}
    assert set(events) == {"inspector1", "outsider"}
    assert events["inspector1"].before["groups"] == [roles.INSPECTOR]
    assert events["inspector1"].after["groups"] == [roles.ADMIN, roles.INSPECTOR]
    assert events["outsider"].before["groups"] == []
    assert events["outsider"].after["groups"] == [roles.ADMIN]
    assert {e.actor for e in events.values()} == {admin_user}


def test_removing_and_clearing_roles_are_audited(admin_user, ml_lead):
    AuditEvent.objects.all().delete()
    _as(admin_user, lambda: ml_lead.groups.add(_group(roles.ADMIN)))
    _as(admin_user, lambda: ml_lead.groups.remove(_group(roles.ML_LEAD)))
    _as(admin_user, lambda: ml_lead.groups.clear())

    changes = [
        (e.before["groups"], e.after["groups"])
        for e in AuditEvent.objects.filter(action="user.roles").order_by("id")
    ]
    assert changes == [
        ([roles.ML_LEAD], [roles.ADMIN, roles.ML_LEAD]),
        ([roles.ADMIN, roles.ML_LEAD], [roles.ADMIN]),
        ([roles.ADMIN], []),
    ]


def test_a_change_that_changes_nothing_records_nothing(admin_user, inspector):
    AuditEvent.objects.all().delete()
    _as(admin_user, lambda: inspector.groups.add(_group(roles.INSPECTOR)))
    assert not AuditEvent.objects.exists()


def test_role_changes_made_outside_a_request_are_set_up_and_not_recorded(inspector):
    """Migrations, the demo loader and commands run with the server's own access."""
    inspector.groups.add(_group(roles.ML_LEAD))
    assert not AuditEvent.objects.filter(action="user.roles").exists()


def test_the_request_is_forgotten_once_answered(admin_user):
    seen = []
    _as(admin_user, lambda: seen.append(request_in_progress()))
    assert seen == [True]
    assert not request_in_progress()
