from __future__ import annotations

from typing import cast

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.http import HttpRequest

from deployments.models import AuditEvent, Deployment, ModelVersion, Prediction, ScoringAttempt
from deployments.services import DeploymentRefused, deployment_shadow_start


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "queue",
        "variant",
        "parent",
        "size_bytes",
        "reference_rows",
        "created_by",
        "created_at",
    ]
    list_filter = ["queue", "variant"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["put_in_shadow"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Versions are added through the registry (upload form or register_model), which
        # validates the file; the admin cannot bypass that.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(
        description="Put selected versions in shadow on their queue", permissions=["deploy"]
    )
    def put_in_shadow(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for version in queryset.select_related("queue"):
            try:
                deployment_shadow_start(model_version=version, actor=cast(User, request.user))
            except DeploymentRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{version.key} is in shadow on {version.queue.slug}.")

    def has_deploy_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("deployments.change_deployment")


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ["model_version", "queue", "role", "traffic_share", "started_at", "updated_at"]
    list_filter = ["queue", "role"]


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    list_display = [
        "item",
        "model_version",
        "status",
        "label",
        "confidence",
        "latency_ms",
        "backend",
        "attempts",
        "created_at",
    ]
    list_filter = ["model_version", "status", "backend"]
    list_select_related = ["item", "item__queue", "model_version"]
    search_fields = ["item__external_id"]


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_name", "action", "subject"]
    list_filter = ["action"]
    search_fields = ["subject", "actor_name"]


@admin.register(ScoringAttempt)
class ScoringAttemptAdmin(ReadOnlyAdmin):
    list_display = ["item", "model_version", "attempts", "last_queued_at"]
    list_filter = ["model_version"]
    list_select_related = ["item", "item__queue", "model_version"]
