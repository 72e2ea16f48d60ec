from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from inspections.models import ApiToken, Item, Judgment, Queue


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "input_width",
        "double_inspection_rate",
        "panel_size",
        "audit_rate",
    ]
    prepopulated_fields = {"slug": ["name"]}

    def get_readonly_fields(self, request: HttpRequest, obj: Queue | None = None) -> list[str]:
        # The deferral threshold routes live traffic: it changes through the confidence
        # report or the API, which audit the change and tell every web process.
        return ["deferral_threshold"] if obj is not None else []


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "queue",
        "received_at",
        "route",
        "human_status",
        "judgment_count",
        "judgments_needed",
    ]
    list_filter = ["queue", "route", "human_status"]
    search_fields = ["external_id"]
    date_hierarchy = "received_at"
    readonly_fields = ["queue", "external_id", "features", "received_at", "route", "judgment_count"]
    list_select_related = ["queue"]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["item", "inspector", "label", "seconds_spent", "created_at"]
    list_filter = ["item__queue", "inspector"]
    readonly_fields = ["item", "inspector", "label", "seconds_spent", "created_at"]
    list_select_related = ["item", "item__queue", "inspector"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """List tokens read only; the API tokens page (/tokens/) issues and revokes them.

    That page shows the secret once and audits both; a token is revoked, never deleted.
    """

    list_display = [
        "prefix",
        "name",
        "queue",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = ["queue"]
    list_select_related = ["queue", "created_by"]
    readonly_fields = [
        "prefix",
        "name",
        "queue",
        "created_by",
        "created_at",
        "expires_at",
        "revoked_at",
        "revoked_by",
        "last_used_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
