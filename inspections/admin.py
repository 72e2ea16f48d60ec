from __future__ import annotations

from typing import cast

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.http import HttpRequest

from inspections.models import ApiToken, Item, Judgment, Queue
from inspections.services import api_token_create


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
    list_display = ["prefix", "name", "queue", "created_by", "created_at", "last_used_at"]
    list_filter = ["queue"]
    fields = ["queue", "name"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiToken, form: object, change: bool) -> None:
        token, raw = api_token_create(
            queue=obj.queue, name=obj.name, created_by=cast(User, request.user)
        )
        obj.pk = token.pk
        messages.warning(
            request, f"New API token for {token.queue.slug} (shown only now, copy it): {raw}"
        )
