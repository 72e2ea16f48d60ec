"""Nobody raises privileges through the admin: crafted POSTs for each role; superusers still can."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User

from shadowlab import roles
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.security]

ROLES = ("inspector", "ml_lead", "admin_user", "outsider")
# What each role gets back from a POST that tries to raise privileges: the non-staff go to the
# admin's sign-in page, the staff without user rights get 403, the admin role gets 403 too.
REFUSED = {"inspector": 302, "ml_lead": 403, "admin_user": 403, "outsider": 302}


@pytest.fixture
def superuser(db) -> User:
    return User.objects.create_superuser("root", password=PASSWORD)


def _privileges(user: User) -> tuple[bool, bool, list[str], list[str]]:
    user = User.objects.get(pk=user.pk)
    return (
        user.is_superuser,
        user.is_staff,
        sorted(user.groups.values_list("name", flat=True)),
        sorted(user.user_permissions.values_list("codename", flat=True)),
    )


def _change_form(user: User, **fields: object) -> dict[str, object]:
    """Return what the admin's change page posts for this user, with some fields changed."""
    data: dict[str, object] = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "last_login_0": "",
        "last_login_1": "",
        "groups": [str(pk) for pk in user.groups.values_list("pk", flat=True)],
    }
    if user.is_staff:
        data["is_staff"] = "on"
    data.update(fields)
    return data


def _every_permission() -> list[str]:
    return [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]


def _every_group() -> list[str]:
    roles.groups_sync()
    return [str(pk) for pk in Group.objects.values_list("pk", flat=True)]


ESCALATIONS = {
    "superuser flag": {"is_superuser": "on"},
    "every group": {"groups": "every"},
    "every permission": {"user_permissions": "every"},
    "all at once": {"is_superuser": "on", "groups": "every", "user_permissions": "every"},
}


def _crafted(user: User, escalation: dict[str, str]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for name, value in escalation.items():
        if value == "every":
            fields[name] = _every_group() if name == "groups" else _every_permission()
        else:
            fields[name] = value
    return _change_form(user, **fields)


@pytest.mark.parametrize("escalation", ESCALATIONS, ids=list(ESCALATIONS))
@pytest.mark.parametrize("role", ROLES)
def test_no_role_can_raise_its_own_privileges_on_its_user_page(
    request, client_for, role, escalation, figure
):
    user = request.getfixturevalue(role)
    before = _privileges(user)

    response = client_for(user).post(
        f"/admin/auth/user/{user.pk}/change/", _crafted(user, ESCALATIONS[escalation])
    )

    if role == "admin_user" and escalation == "every group":
        # Groups the admin does not hold are not among the choices: the form comes back
        # with the error, as for any invalid value.
        assert response.status_code == 200
        assert "Select a valid choice" in response.content.decode()
    else:
        assert response.status_code == REFUSED[role]
    assert _privileges(user) == before
    figure(f"{role} setting {escalation} on themselves", f"refused with {response.status_code}")


@pytest.mark.parametrize("role", ROLES)
def test_no_role_can_raise_another_users_privileges(request, client_for, role, inspector2):
    user = request.getfixturevalue(role)
    before = _privileges(inspector2)

    response = client_for(user).post(
        f"/admin/auth/user/{inspector2.pk}/change/",
        _crafted(inspector2, ESCALATIONS["all at once"]),
    )

    assert response.status_code == REFUSED[role]
    assert _privileges(inspector2) == before


@pytest.mark.parametrize("role", ROLES)
def test_no_role_can_add_a_user_with_privileges(request, client_for, role):
    user = request.getfixturevalue(role)
    form = {
        "username": "newcomer",
        "usable_password": "true",
        "password1": "a-long-enough-password-9",
        "password2": "a-long-enough-password-9",
        "is_superuser": "on",
        "is_staff": "on",
        "groups": _every_group(),
        "user_permissions": _every_permission(),
    }

    response = client_for(user).post("/admin/auth/user/add/", form)

    assert response.status_code == REFUSED[role]
    assert not User.objects.filter(username="newcomer").exists()


def test_the_admin_role_adds_plain_users(client_for, admin_user):
    form = {
        "username": "newcomer",
        "usable_password": "true",
        "password1": "a-long-enough-password-9",
        "password2": "a-long-enough-password-9",
    }

    response = client_for(admin_user).post("/admin/auth/user/add/", form)

    assert response.status_code == 302
    assert _privileges(User.objects.get(username="newcomer")) == (False, False, [], [])


def test_the_admin_role_sees_neither_the_superuser_flag_nor_permissions_as_fields(
    client_for, admin_user, inspector
):
    html = client_for(admin_user).get(f"/admin/auth/user/{inspector.pk}/change/").content.decode()

    assert 'name="is_superuser"' not in html
    assert 'name="user_permissions"' not in html
    # Only the groups the admin holds are offered.
    offered = Group.objects.filter(name=roles.ADMIN).get()
    assert f'<option value="{offered.pk}"' in html
    for other in Group.objects.exclude(name=roles.ADMIN):
        assert f'<option value="{other.pk}"' not in html


def test_the_admin_role_assigns_a_group_it_holds_but_not_one_it_does_not(
    client_for, admin_user, outsider
):
    admin_group = Group.objects.get(name=roles.ADMIN)
    inspector_group = Group.objects.get(name=roles.INSPECTOR)
    client = client_for(admin_user)

    refused = client.post(
        f"/admin/auth/user/{outsider.pk}/change/",
        _change_form(outsider, groups=[str(inspector_group.pk)]),
    )
    assert refused.status_code == 200  # the form again, with the error
    assert "Select a valid choice" in refused.content.decode()
    assert _privileges(outsider) == (False, False, [], [])

    granted = client.post(
        f"/admin/auth/user/{outsider.pk}/change/",
        _change_form(outsider, groups=[str(admin_group.pk)]),
    )
    assert granted.status_code == 302
    assert _privileges(outsider)[2] == [roles.ADMIN]


def test_editing_a_user_keeps_the_groups_the_editor_does_not_hold(
    client_for, admin_user, inspector
):
    response = client_for(admin_user).post(
        f"/admin/auth/user/{inspector.pk}/change/",
        _change_form(inspector, email="inspector1@example.com", groups=[]),
    )

    assert response.status_code == 302
    assert User.objects.get(pk=inspector.pk).email == "inspector1@example.com"
    assert _privileges(inspector)[2] == [roles.INSPECTOR]


def test_the_admin_role_cannot_change_or_take_over_a_superuser(client_for, admin_user, superuser):
    client = client_for(admin_user)
    before = User.objects.get(pk=superuser.pk).password

    for path, form in (
        (f"/admin/auth/user/{superuser.pk}/change/", _change_form(superuser, is_active="")),
        (
            f"/admin/auth/user/{superuser.pk}/password/",
            {"password1": "taken-over-password-9", "password2": "taken-over-password-9"},
        ),
        (f"/admin/auth/user/{superuser.pk}/delete/", {"post": "yes"}),
    ):
        assert client.post(path, form).status_code == 403, path

    stored = User.objects.get(pk=superuser.pk)
    assert (stored.password, stored.is_active, stored.is_superuser) == (before, True, True)


@pytest.mark.parametrize("role", ROLES)
def test_no_role_can_edit_the_groups_or_their_permissions(request, client_for, role):
    user = request.getfixturevalue(role)
    client = client_for(user)
    roles.groups_sync()
    group = Group.objects.get(name=roles.ADMIN)
    before = sorted(group.permissions.values_list("pk", flat=True))

    change = client.post(
        f"/admin/auth/group/{group.pk}/change/",
        {"name": group.name, "permissions": _every_permission()},
    )
    add = client.post(
        "/admin/auth/group/add/", {"name": "everything", "permissions": _every_permission()}
    )

    assert change.status_code == add.status_code == REFUSED[role]
    assert sorted(group.permissions.values_list("pk", flat=True)) == before
    assert not Group.objects.filter(name="everything").exists()
    # Permissions have no admin page of their own.
    if role in ("ml_lead", "admin_user"):
        assert client.get("/admin/auth/permission/").status_code == 404


def test_a_superuser_still_grants_everything(client_for, superuser, outsider):
    client = client_for(superuser)
    permission = Permission.objects.get(codename="judge_item")
    every_group = _every_group()

    response = client.post(
        f"/admin/auth/user/{outsider.pk}/change/",
        _change_form(
            outsider,
            is_superuser="on",
            is_staff="on",
            groups=every_group,
            user_permissions=[str(permission.pk)],
        ),
    )

    assert response.status_code == 302
    is_superuser, is_staff, groups, permissions = _privileges(outsider)
    assert (is_superuser, is_staff, permissions) == (True, True, ["judge_item"])
    assert len(groups) == len(every_group)
    added = client.post(
        "/admin/auth/group/add/", {"name": "auditors", "permissions": [str(permission.pk)]}
    )
    assert added.status_code == 302
    assert Group.objects.get(name="auditors").permissions.get() == permission


def test_the_save_checks_refuse_what_a_looser_form_would_let_through(rf, admin_user, outsider):
    from django.contrib import admin
    from django.core.exceptions import PermissionDenied
    from django.forms import modelform_factory

    from shadowlab.admin import ShadowLabUserAdmin

    user_admin = ShadowLabUserAdmin(User, admin.site)
    request = rf.post("/admin/auth/user/")
    request.user = admin_user
    # A form that lets everything through, as if the admin's field restrictions were lost.
    form_class = modelform_factory(User, fields=["is_superuser", "groups"])

    promoted = form_class({"is_superuser": "on"}, instance=User.objects.get(pk=outsider.pk))
    assert promoted.is_valid()
    with pytest.raises(PermissionDenied, match="superuser"):
        user_admin.save_model(request, promoted.save(commit=False), promoted, change=True)

    inspector_group = Group.objects.get(name=roles.INSPECTOR)
    regrouped = form_class({"groups": [inspector_group.pk]}, instance=outsider)
    assert regrouped.is_valid()
    regrouped.save(commit=False)
    with pytest.raises(PermissionDenied, match="only the groups you hold"):
        user_admin.save_related(request, regrouped, [], change=True)
