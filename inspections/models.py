"""The human side: queues of items, the inspectors' judgments, API tokens for intake."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

# The most inspectors one item can be sent to (a queue's panel for double inspection).
MAX_PANEL = 5


class Queue(models.Model):
    """A stream of items that share one decision (labels) and one input format."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    labels = models.JSONField(help_text='Ordered decision labels, e.g. ["0", "1", ...].')
    input_width = models.PositiveIntegerField(help_text="Number of features per item.")
    image_shape = models.JSONField(
        null=True, blank=True, help_text="[rows, columns] to show features as an image."
    )
    double_inspection_rate = models.FloatField(
        default=0.1,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of items judged independently by two inspectors.",
    )
    panel_size = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(2), MaxValueValidator(MAX_PANEL)],
        help_text=(
            "Inspectors who each judge an item selected for double inspection; "
            "three or more also measure their agreement with Fleiss' kappa."
        ),
    )
    audit_rate = models.FloatField(
        default=0.10,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of model-decided items also sent to inspectors, blind, for audit.",
    )
    deferral_threshold = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="A model decision less confident than this goes to inspectors instead "
        "(0 defers nothing).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(double_inspection_rate__gte=0) & Q(double_inspection_rate__lte=1),
                name="queue_double_inspection_rate_is_a_share",
            ),
            models.CheckConstraint(
                condition=Q(panel_size__gte=2) & Q(panel_size__lte=MAX_PANEL),
                name="queue_panel_size_2_to_5",
            ),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0) & Q(audit_rate__lte=1),
                name="queue_audit_rate_is_a_share",
            ),
            models.CheckConstraint(
                condition=Q(deferral_threshold__gte=0) & Q(deferral_threshold__lte=1),
                name="queue_deferral_threshold_is_a_share",
            ),
            models.CheckConstraint(condition=Q(input_width__gte=1), name="queue_has_features"),
        ]
        permissions = [("judge_item", "Can judge items in the inspection queue")]

    def __str__(self) -> str:
        return self.name

    def key_for_label(self, label: str) -> str:
        """Return the keyboard key that records this label on the inspect screen."""
        return self.label_keys()[label]

    def label_keys(self) -> dict[str, str]:
        """Map each label to one key: the label itself if it is one digit or letter, else a-z."""
        keys: dict[str, str] = {}
        taken: set[str] = set()
        for label in self.labels:
            if len(label) == 1 and label.isalnum() and label.lower() not in taken:
                keys[label] = label.lower()
                taken.add(label.lower())
        spare = (c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if c not in taken)
        for label in self.labels:
            if label not in keys:
                first = label[:1].lower()
                key = first if first.isalnum() and first not in taken else next(spare, "")
                keys[label] = key
                taken.add(key)
        return keys

    @property
    def shows_image(self) -> bool:
        shape: list[int] | None = self.image_shape
        return shape is not None and len(shape) == 2 and shape[0] * shape[1] == self.input_width


class Item(models.Model):
    """One thing to inspect: its features, how it is routed and how many humans must judge it."""

    class Route(models.TextChoices):
        HUMAN = "human", "human"
        MODEL = "model", "model"

    class HumanStatus(models.TextChoices):
        PENDING = "pending", "awaiting judgment"
        COMPLETE = "complete", "judged"
        NOT_NEEDED = "not_needed", "no human judgment needed"

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="items")
    external_id = models.CharField(max_length=200)
    features = models.JSONField()
    received_at = models.DateTimeField(db_index=True)
    route = models.CharField(max_length=10, choices=Route.choices, default=Route.HUMAN)
    judgments_needed = models.PositiveSmallIntegerField(default=1)
    judgment_count = models.PositiveSmallIntegerField(default=0)
    human_status = models.CharField(
        max_length=12, choices=HumanStatus.choices, default=HumanStatus.PENDING
    )
    audit_sample = models.BooleanField(
        default=False,
        help_text="Decided by a model and also sent to inspectors, blind, to keep measuring it.",
    )
    route_note = models.CharField(
        max_length=200,
        blank=True,
        help_text="Why inspectors decide an item a model could have decided (deferral, "
        "fallback, kill switch).",
    )

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "external_id"], name="item_external_id_unique_per_queue"
            ),
            models.CheckConstraint(
                condition=Q(judgments_needed__gte=0) & Q(judgments_needed__lte=MAX_PANEL),
                name="item_judgments_needed_0_to_5",
            ),
            models.CheckConstraint(
                condition=Q(judgment_count__lte=models.F("judgments_needed")),
                name="item_never_over_judged",
            ),
        ]
        indexes = [
            # The inspect screen walks this in order and stops at the first item it may serve.
            models.Index(
                fields=["queue", "human_status", "received_at", "id"], name="item_work_idx"
            ),
            # Audit-sample reports and rollups read a tenth of a day's items or fewer: without
            # it each of their queries walks every item of the day (250 -> 34 ms a query at
            # 100,000 items a day).
            models.Index(
                fields=["queue", "received_at"],
                condition=Q(audit_sample=True),
                name="item_audit_sample_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.queue.slug}/{self.external_id}"


class Judgment(models.Model):
    """An inspector's decision on an item."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="judgments")
    inspector = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="judgments"
    )
    label = models.CharField(max_length=100)
    seconds_spent = models.FloatField(validators=[MinValueValidator(0.0)])
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "inspector"], name="judgment_one_per_item_and_inspector"
            ),
            models.CheckConstraint(
                condition=Q(seconds_spent__gte=0), name="judgment_seconds_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["inspector", "created_at"], name="judgment_by_inspector")]

    def __str__(self) -> str:
        return f"{self.item} = {self.label} by {self.inspector}"


class Assignment(models.Model):
    """An item reserved for one inspector while it is on their screen."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="assignments")
    inspector = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    shown_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "inspector"], name="assignment_one_per_item_and_inspector"
            )
        ]
        indexes = [
            models.Index(fields=["inspector", "expires_at"], name="assignment_by_inspector"),
        ]

    def __str__(self) -> str:
        return f"{self.item} for {self.inspector}"


class ApiToken(models.Model):
    """A bearer token that lets an API client submit and read items of one queue.

    It works until it expires (expires_at; null only when an admin chose no expiry) or is
    revoked; a revoked or expired token stays listed, for the record.
    """

    class State(models.TextChoices):
        ACTIVE = "active", "active"
        EXPIRED = "expired", "expired"
        REVOKED = "revoked", "revoked"

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to tell tokens apart.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Refused from then on; empty: never expires."
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    last_used_at = models.DateTimeField(
        null=True, blank=True, help_text="Written at most once a minute."
    )

    class Meta:
        verbose_name = "API token"
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__isnull=True) | Q(expires_at__gt=F("created_at")),
                name="api_token_expires_after_creation",
            ),
            models.CheckConstraint(
                condition=Q(revoked_by__isnull=True) | Q(revoked_at__isnull=False),
                name="api_token_revoked_by_only_when_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.queue.slug})"

    def state(self, now: datetime) -> ApiToken.State:
        """Return whether the token works at this time, and if not why."""
        if self.revoked_at is not None:
            return ApiToken.State.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return ApiToken.State.EXPIRED
        return ApiToken.State.ACTIVE

    @staticmethod
    def hash(raw_token: str) -> str:
        return hashlib.sha256(raw_token.encode()).hexdigest()
