"""User and group administration that nobody can use to raise privileges (their own or others').

Only superusers make superusers, grant permissions one by one or edit the role groups. Anyone
else with the right to change users (the admin role) may assign only the groups they hold
themselves, never sees another user's superuser flag or permissions as editable, and cannot
change or delete a superuser (a new password would let them sign in as one). The form hides
what they may not touch; save_model and save_related check again, so a crafted POST is
refused with 403 and nothing is stored.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.db.models import ManyToManyField, QuerySet
from django.forms import ModelForm, ModelMultipleChoiceField
from django.http import HttpRequest, HttpResponse

from shadowlab.login_throttle import login_unlock

# Fields only a superuser may set on a user; a non-superuser's POST that carries one was
# crafted (the form they are shown does not have them).
SUPERUSER_ONLY_FIELDS = ("is_superuser", "user_permissions")
# Most users one "lift sign-in lockouts" action unlocks (each is a few cache deletions).
UNLOCK_MAX_USERS = 100


def _actor(request: HttpRequest) -> User:
    # The admin site lets only signed-in staff this far.
    return cast(User, request.user)


def groups_assignable(actor: User) -> QuerySet[Group]:
    """Return the groups this user may assign to others: all for a superuser, else their own."""
    if actor.is_superuser:
        return Group.objects.all()
    return Group.objects.filter(user=actor)


class ShadowLabUserAdmin(UserAdmin):
    actions = ["sign_in_unlock"]

    @admin.action(permissions=["change"], description="Lift sign-in lockouts of selected users")
    def sign_in_unlock(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        actor = _actor(request)
        lifted = []
        for user in queryset[:UNLOCK_MAX_USERS]:
            addresses = login_unlock(user=user, actor=actor)
            lifted.append(f"{user.get_username()} ({len(addresses)} address(es))")
        self.message_user(request, "Sign-in lockouts lifted: " + ", ".join(lifted) + ".")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not _actor(request).is_superuser:
            fields += SUPERUSER_ONLY_FIELDS
        return fields

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField | None:
        if db_field.name == "groups":
            kwargs["queryset"] = groups_assignable(_actor(request))
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not _actor(request).is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not _actor(request).is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "POST" and not _actor(request).is_superuser:
            crafted = [name for name in SUPERUSER_ONLY_FIELDS if name in request.POST]
            if crafted:
                raise PermissionDenied(f"only a superuser may set {', '.join(crafted)}")
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm, change: bool) -> None:
        actor = _actor(request)
        if not actor.is_superuser:
            stored = User.objects.filter(pk=obj.pk).first() if change else None
            if obj.is_superuser != (stored is not None and stored.is_superuser):
                raise PermissionDenied("only a superuser may make or unmake a superuser")
        super().save_model(request, obj, form, change)

    def save_related(
        self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        actor = _actor(request)
        if actor.is_superuser:
            super().save_related(request, form, formsets, change)
            return
        user = form.instance
        groups_before = set(user.groups.all())
        permissions_before = set(user.user_permissions.all())
        super().save_related(request, form, formsets, change)
        assignable = set(groups_assignable(actor))
        groups_after = set(user.groups.all())
        if groups_after - groups_before - assignable:
            raise PermissionDenied("you may assign only the groups you hold")
        # The form offers only the actor's own groups: keep the others the user already had
        # (editing an inspector's e-mail must not drop their role).
        kept = groups_before - assignable - groups_after
        if kept:
            user.groups.add(*kept)
        if set(user.user_permissions.all()) != permissions_before:
            raise PermissionDenied("only a superuser may grant permissions")


class ShadowLabGroupAdmin(GroupAdmin):
    """The role groups and their permissions come from shadowlab.roles: superusers only edit."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return _actor(request).is_superuser

    def has_change_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        return _actor(request).is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Group | None = None) -> bool:
        return _actor(request).is_superuser


admin.site.unregister(User)
admin.site.register(User, ShadowLabUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, ShadowLabGroupAdmin)
