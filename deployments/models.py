"""The model side: registered model versions, where they are deployed, what they predicted."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from inspections.models import Item, Queue


class ModelVersion(models.Model):
    """An ONNX model registered for a queue, validated at registration and never changed."""

    class Variant(models.TextChoices):
        FP32 = "fp32", "FP32"
        INT8 = "int8", "INT8"

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="model_versions")
    name = models.CharField(max_length=100)
    version = models.CharField(max_length=50)
    onnx_file = models.FileField(upload_to="models/")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    labels = models.JSONField(help_text="Label of each probability column, in output order.")
    input_width = models.PositiveIntegerField()
    input_name = models.CharField(max_length=200)
    probability_output = models.CharField(max_length=200)
    variant = models.CharField(max_length=4, choices=Variant.choices, default=Variant.FP32)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="variants"
    )
    reference_file = models.FileField(upload_to="reference/", blank=True)
    reference_rows = models.PositiveIntegerField(default=0)
    notes = models.JSONField(
        default=dict, blank=True, help_text="Quantization details and similar."
    )
    mlflow_source = models.JSONField(
        default=dict,
        blank=True,
        help_text="Where an MLflow-registered model came from: tracking URI, model URI, run id, "
        "registered name and version, and whether ShadowLab writes its verdicts back as tags.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["queue", "name", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="model_version_unique"),
            models.CheckConstraint(
                condition=Q(variant="fp32") | Q(parent__isnull=False),
                name="model_version_int8_has_parent",
            ),
        ]
        permissions = [("register_modelversion", "Can register and quantize model versions")]

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def key(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def tags_back_to_mlflow(self) -> bool:
        return bool(isinstance(self.mlflow_source, dict) and self.mlflow_source.get("tag_back"))


class Deployment(models.Model):
    """The role a model version plays for a queue."""

    class Role(models.TextChoices):
        SHADOW = "shadow", "shadow"
        CANARY = "canary", "canary"
        LIVE = "live", "live"
        STANDBY = "standby", "standby"
        RETIRED = "retired", "retired"

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="deployments")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="deployments"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    traffic_share = models.FloatField(default=0.0, help_text="Share of items the model decides.")
    started_at = models.DateTimeField(help_text="When the version took its current role.")
    share_changed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a canary's share last changed (its soak time runs from here).",
    )
    promotion = models.ForeignKey(
        "PromotionRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The approved request that put the version in its canary or live role.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["queue", "role", "started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "model_version"], name="deployment_one_per_queue_and_version"
            ),
            models.UniqueConstraint(
                fields=["queue"], condition=Q(role="live"), name="deployment_one_live_per_queue"
            ),
            models.UniqueConstraint(
                fields=["queue"], condition=Q(role="canary"), name="deployment_one_canary_per_queue"
            ),
            models.UniqueConstraint(
                fields=["queue"],
                condition=Q(role="standby"),
                name="deployment_one_standby_per_queue",
            ),
            models.CheckConstraint(
                condition=Q(traffic_share__gte=0) & Q(traffic_share__lte=1),
                name="deployment_traffic_share_is_a_share",
            ),
            models.CheckConstraint(
                condition=~Q(role="shadow") | Q(traffic_share=0),
                name="deployment_shadow_decides_nothing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} {self.role} on {self.queue.slug}"


class Prediction(models.Model):
    """What one model version said about one item (or why it could not say)."""

    class Status(models.TextChoices):
        OK = "ok", "ok"
        ERROR = "error", "error"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="predictions"
    )
    status = models.CharField(max_length=5, choices=Status.choices)
    label = models.CharField(max_length=100, blank=True)
    probabilities = models.JSONField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(null=True, blank=True, help_text="Inference time per item.")
    backend = models.CharField(max_length=4, choices=ModelVersion.Variant.choices)
    reason = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "model_version"], name="prediction_one_per_item_and_version"
            ),
            models.CheckConstraint(
                condition=Q(status="error") | (Q(confidence__isnull=False) & ~Q(label="")),
                name="prediction_ok_has_label_and_confidence",
            ),
            models.CheckConstraint(
                condition=Q(status="ok") | ~Q(reason=""), name="prediction_error_has_reason"
            ),
        ]
        indexes = [models.Index(fields=["model_version", "status"], name="prediction_status_idx")]

    def __str__(self) -> str:
        return f"{self.model_version} on {self.item_id}: {self.status} {self.label}"


class Decision(models.Model):
    """What the canary or live version said about a new item at intake, and what became of it.

    A decided item is the model's; a deferred (not confident enough) or failed (error,
    timeout, open breaker) one goes to inspectors. Failed rows are the live path's error
    rate; decided rows with their latencies are its speed.
    """

    class Outcome(models.TextChoices):
        DECIDED = "decided", "decided"
        DEFERRED = "deferred", "deferred to inspectors"
        FAILED = "failed", "failed, sent to inspectors"

    class Role(models.TextChoices):
        CANARY = "canary", "canary"
        LIVE = "live", "live"

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="decision")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="decisions"
    )
    role = models.CharField(max_length=6, choices=Role.choices)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    label = models.CharField(max_length=100, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField(help_text="Time the model took, or was given, at intake.")
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(outcome="failed") | (Q(confidence__isnull=False) & ~Q(label="")),
                name="decision_answered_has_label_and_confidence",
            ),
            models.CheckConstraint(
                condition=~Q(outcome="failed") | ~Q(reason=""), name="decision_failed_has_reason"
            ),
        ]
        indexes = [
            models.Index(fields=["model_version", "created_at"], name="decision_version_time_idx")
        ]

    def __str__(self) -> str:
        return f"{self.model_version} on {self.item_id}: {self.outcome} {self.label}"


class ScoringAttempt(models.Model):
    """Book-keeping for an item the sweeper had to queue again for one model version."""

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="scoring_attempts")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE)
    attempts = models.PositiveSmallIntegerField(default=1)
    last_queued_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "model_version"], name="scoring_attempt_one_per_item_and_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_version} on {self.item_id}: {self.attempts} attempts"


class PromotionRequest(models.Model):
    """An ml_lead's request to promote a version on a passing evaluation; an admin decides."""

    class Target(models.TextChoices):
        CANARY = "canary", "canary"
        LIVE = "live", "live"

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        APPROVED = "approved", "approved"
        REJECTED = "rejected", "rejected"

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="promotion_requests")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="promotion_requests"
    )
    target = models.CharField(max_length=6, choices=Target.choices)
    share = models.FloatField(help_text="Share of items the model decides once approved.")
    evaluation = models.ForeignKey(
        "analytics.GateEvaluation", on_delete=models.PROTECT, related_name="promotion_requests"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="promotion_requests"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True, help_text="The requester's reason.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="promotion_decisions",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    comment = models.TextField(blank=True, help_text="The deciding admin's comment.")

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version"],
                condition=Q(status="pending"),
                name="promotion_one_pending_per_version",
            ),
            # Four eyes: whoever decides a request is not the one who filed it.
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("requested_by")),
                name="promotion_four_eyes",
            ),
            models.CheckConstraint(
                condition=Q(share__gt=0) & Q(share__lte=1), name="promotion_share_is_a_share"
            ),
            models.CheckConstraint(
                condition=Q(status="pending")
                | (Q(decided_by__isnull=False) & Q(decided_at__isnull=False)),
                name="promotion_decided_has_decider",
            ),
        ]
        permissions = [
            ("request_promotion", "Can request the promotion of a model version"),
            ("decide_promotion", "Can approve or reject a promotion request"),
        ]

    def __str__(self) -> str:
        return f"promotion {self.pk}: {self.model_version} to {self.target} ({self.status})"


class RolloutControl(models.Model):
    """A queue's kill switch: while it is on, every item goes to inspectors."""

    queue = models.OneToOneField(Queue, on_delete=models.CASCADE, related_name="rollout_control")
    kill_switch = models.BooleanField(default=False)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    changed_at = models.DateTimeField(null=True, blank=True)
    routing_version = models.PositiveBigIntegerField(
        default=0,
        help_text="Moves with every rollout change; each web process reloads its routing when "
        "it does.",
    )

    class Meta:
        permissions = [("flip_kill_switch", "Can turn a queue's kill switch on or off")]

    def __str__(self) -> str:
        return f"kill switch {'on' if self.kill_switch else 'off'} for {self.queue.slug}"


class AuditEvent(models.Model):
    """An append-only record of who changed what; never edited or deleted."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150, help_text="Kept if the user is deleted.")
    action = models.CharField(max_length=60, db_index=True)
    queue = models.ForeignKey(
        Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    subject_type = models.CharField(max_length=60)
    subject_id = models.CharField(max_length=60)
    subject = models.CharField(max_length=300)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    evidence = models.CharField(
        max_length=100, blank=True, help_text='What the change relied on, e.g. "gate-evaluation:7".'
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["queue", "-created_at"], name="audit_queue_time_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.subject}"


class MonitorCheck(models.Model):
    """One rollback-monitor look at a canary or live version: every figure, bound and verdict.

    Kept: the latest few looks per version (the rollout page shows the latest) and, for
    good, every look that rolled a version back, which its audit events name as evidence.
    """

    class Verdict(models.TextChoices):
        OK = "ok", "ok"
        BREACH = "breach", "breach"
        TOO_FEW = "too_few", "too few to decide"
        ERROR = "error", "could not be checked"

    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="monitor_checks")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="monitor_checks"
    )
    role = models.CharField(max_length=6, choices=Decision.Role.choices)
    policy = models.ForeignKey(
        "analytics.GatePolicy",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The policy version whose thresholds the look used.",
    )
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    verdict = models.CharField(max_length=7, choices=Verdict.choices)
    checks = models.JSONField(
        default=list, help_text="Each check: name, value, bound, threshold, n, verdict, sentence."
    )
    sentence = models.TextField(help_text="The look in a sentence: why it rolled back, or not.")
    rolled_back = models.BooleanField(default=False)
    outcome = models.CharField(
        max_length=300, blank=True, help_text="What the breach did, e.g. who decides now."
    )
    created_at = models.DateTimeField(db_index=True, help_text="When the look was taken.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["model_version", "-created_at"], name="monitor_check_latest_idx")
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rolled_back=False) | Q(verdict="breach"),
                name="monitor_check_rollback_on_breach_only",
            ),
            models.CheckConstraint(
                condition=Q(window_start__lte=models.F("window_end")),
                name="monitor_check_window_in_order",
            ),
        ]

    def __str__(self) -> str:
        return f"monitor check {self.pk} of {self.model_version_id}: {self.verdict}"


class ErrorEpisode(models.Model):
    """A stretch of time in which a deployed version's predictions were mostly errors.

    Admins are mailed once when an episode opens, not once per failed item; it closes when
    the error rate falls back below the threshold, and the next breach opens a new one.
    """

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="error_episodes")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="error_episodes"
    )
    role = models.CharField(max_length=10, choices=Deployment.Role.choices)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    errors = models.PositiveIntegerField(help_text="Errors in the window that opened it.")
    total = models.PositiveIntegerField(help_text="Predictions in the window that opened it.")
    reasons = models.JSONField(default=list, blank=True, help_text="The most frequent reasons.")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version"],
                condition=Q(ended_at__isnull=True),
                name="error_episode_one_open_per_version",
            ),
            models.CheckConstraint(
                condition=Q(errors__lte=models.F("total")), name="error_episode_errors_of_total"
            ),
        ]

    def __str__(self) -> str:
        state = "open" if self.ended_at is None else "closed"
        return f"{self.model_version} errors since {self.started_at:%Y-%m-%d %H:%M} ({state})"
