from __future__ import annotations

from typing import cast

from django.contrib import admin
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from analytics.adjudication import adjudication_delete
from analytics.models import Adjudication
from shadowlab import roles


@admin.register(Adjudication)
class AdjudicationAdmin(admin.ModelAdmin):
    """Read-only for ml_leads; deletion (which is audited) lets an item be adjudicated again."""

    list_display = ["item", "label", "adjudicator", "created_at"]
    list_filter = ["item__queue", "label"]
    search_fields = ["item__external_id", "adjudicator__username"]
    readonly_fields = ["item", "label", "adjudicator", "note", "created_at"]
    list_select_related = ["item__queue", "adjudicator"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return roles.can_view_reports(request.user) or super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return roles.can_view_reports(request.user) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Recorded on the blind adjudication page only.
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: Adjudication) -> None:
        adjudication_delete(adjudication=obj, actor=cast(User, request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Adjudication]) -> None:
        for adjudication in queryset:
            adjudication_delete(adjudication=adjudication, actor=cast(User, request.user))
