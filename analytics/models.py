from django.conf import settings
from django.db import models
from django.db.models import Q

from analytics.gate.inputs import GatePolicyValues
from deployments.models import ModelVersion
from inspections.models import Queue


class ReportAccess(models.Model):
    """Holds the permission to read analytics; it has no table."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_reports", "Can view analytics reports and dashboards")]

    def __str__(self) -> str:
        return "analytics access"


class ReferenceProfile(models.Model):
    """A model version's reference data reduced to bins and counts, computed once.

    Format 1 stored quantile bins only; format 2 (``CURRENT_FORMAT``) adds each feature's
    range and whether it has few distinct values, and its bins see values outside the
    range and give each of a few-valued feature's values a bin. The worker rebuilds an
    older profile; rollups count on the profile's bins, so a new profile format goes with
    a new rollup format (``analytics.stats.counts.ROLLUP_FORMAT``).
    """

    CURRENT_FORMAT = 2

    model_version = models.OneToOneField(
        ModelVersion, on_delete=models.CASCADE, related_name="reference_profile"
    )
    rows = models.PositiveIntegerField()
    # Per feature, the interior quantile edges (the outer ones are -inf and +inf, which
    # JSON cannot hold): 100 fine bins rollups count on, 10 coarse bins PSI is read on.
    fine_edges = models.JSONField()
    coarse_edges = models.JSONField()
    feature_counts = models.JSONField(help_text="Reference counts per feature on the fine bins.")
    prediction_counts = models.JSONField(
        help_text="The model's predicted labels on its reference data, in the queue's label order."
    )
    format = models.PositiveSmallIntegerField(
        default=1, help_text="How the bins were made: 1 quantiles only, 2 range-aware."
    )
    feature_minimum = models.JSONField(
        null=True, blank=True, help_text="Per feature, the smallest reference value (format 2)."
    )
    feature_maximum = models.JSONField(
        null=True, blank=True, help_text="Per feature, the largest reference value (format 2)."
    )
    feature_categorical = models.JSONField(
        null=True,
        blank=True,
        help_text="Per feature, whether it has at most 20 distinct reference values, each "
        "with a bin of its own (format 2).",
    )
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"reference profile of {self.model_version_id}"


class DailyRollup(models.Model):
    """Every count of one queue, model version, closed day and sample (see analytics.counts).

    Sample "all" counts every item of the day; "audit" only the version's audit sample
    (analytics.samples), stored only for days the version has audit items. Both are
    computed together, so a day with a current "all" rollup and no "audit" one had none.
    """

    class Sample(models.TextChoices):
        ALL = "all", "every item"
        AUDIT = "audit", "the version's audit sample"

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="rollups")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="rollups"
    )
    day = models.DateField(help_text="UTC day the items were received.")
    sample = models.CharField(
        max_length=5,
        choices=Sample.choices,
        default=Sample.ALL,
        help_text="Which of the day's items are counted: all, or the version's audit sample.",
    )
    items = models.PositiveIntegerField()
    counts = models.JSONField(help_text="analytics.counts.period_counts_to_json of the day.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["queue", "model_version", "day", "sample"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "model_version", "day", "sample"],
                name="rollup_one_per_version_day_and_sample",
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_version_id} on {self.day} ({self.sample})"


class Adjudication(models.Model):
    """The true label of an item, recorded by an ml_lead who was not told who said what."""

    item = models.ForeignKey(
        "inspections.Item", on_delete=models.CASCADE, related_name="adjudications"
    )
    label = models.CharField(max_length=100, help_text="One of the item's queue labels.")
    adjudicator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="adjudications"
    )
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["item"], name="adjudication_one_per_item"),
            models.CheckConstraint(condition=~Q(label=""), name="adjudication_has_label"),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} is {self.label}"


def canary_steps_default() -> list[float]:
    return [0.05, 0.25, 0.5, 1.0]


class GatePolicy(models.Model):
    """One version of a queue's promotion-gate thresholds; an edit adds a version.

    A threshold left empty switches its criterion off. Evaluations keep the version they
    used, so a policy row is never changed once written.
    """

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="gate_policies")
    version = models.PositiveIntegerField()
    min_judged_items = models.PositiveIntegerField(null=True, blank=True, default=500)
    min_per_label = models.PositiveIntegerField(null=True, blank=True, default=20)
    noninferiority_margin = models.FloatField(null=True, blank=True, default=0.02)
    agreement_floor = models.FloatField(null=True, blank=True, default=0.90)
    kappa_floor = models.FloatField(null=True, blank=True, default=0.80)
    recall_floor = models.FloatField(null=True, blank=True, default=0.80)
    recall_min_items = models.PositiveIntegerField(default=20)
    psi_major = models.FloatField(null=True, blank=True, default=0.25)
    drifted_share_max = models.FloatField(null=True, blank=True, default=0.30)
    max_error_rate = models.FloatField(null=True, blank=True, default=0.005)
    latency_p95_budget_ms = models.FloatField(null=True, blank=True, default=50.0)
    int8_parity_floor = models.FloatField(null=True, blank=True, default=0.995)
    confidence = models.FloatField(default=0.95)
    anytime_valid = models.BooleanField(
        default=True, help_text="Decide on confidence sequences, valid however often one looks."
    )
    window_days = models.PositiveSmallIntegerField(
        default=28, help_text="UTC days of evidence an evaluation reads, ending today."
    )
    max_evaluation_age_hours = models.PositiveSmallIntegerField(
        default=24, help_text="How old a passing evaluation may be when a promotion relies on it."
    )
    canary_steps = models.JSONField(
        default=canary_steps_default,
        help_text="Shares a canary decides, step by step; the last step, 1, is the live switch.",
    )
    auto_advance = models.BooleanField(
        default=False,
        help_text="Advance a canary to its next step by itself after the soak time, on a "
        "fresh passing evaluation of its own audit sample.",
    )
    soak_minutes = models.PositiveIntegerField(
        default=60, help_text="How long a canary stays at a step before it may advance by itself."
    )
    rollback_window_minutes = models.PositiveIntegerField(
        default=60, help_text="The sliding window the rollback monitor reads."
    )
    rollback_min_audited = models.PositiveIntegerField(
        default=100,
        help_text="Judged audit items a window needs before agreement can roll a model back.",
    )
    rollback_min_decisions = models.PositiveIntegerField(
        default=200,
        help_text="Model decisions a window needs before errors, latency or drift can roll "
        "a model back.",
    )
    rollback_max_error_rate = models.FloatField(null=True, blank=True, default=0.05)
    rollback_latency_p95_ms = models.FloatField(null=True, blank=True, default=100.0)
    rollback_drifted_share_max = models.FloatField(null=True, blank=True, default=0.5)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["queue", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "version"], name="gate_policy_one_per_version"
            ),
            models.CheckConstraint(
                condition=Q(confidence__gt=0.5) & Q(confidence__lt=1),
                name="gate_policy_confidence_in_range",
            ),
            models.CheckConstraint(
                condition=Q(window_days__gte=1) & Q(window_days__lte=366),
                name="gate_policy_window_in_range",
            ),
        ]
        permissions = [("change_gate_policy", "Can edit a queue's promotion-gate policy")]

    def __str__(self) -> str:
        return f"gate policy v{self.version} of {self.queue_id}"

    def values(self) -> GatePolicyValues:
        """Return the thresholds the pure gate rules read."""
        return GatePolicyValues(
            **{name: getattr(self, name) for name in GatePolicyValues.__dataclass_fields__}
        )


class GateEvaluation(models.Model):
    """An immutable snapshot of one gate evaluation: every figure, bound and verdict."""

    class Verdict(models.TextChoices):
        PASS = "pass", "pass"
        FAIL = "fail", "fail"
        INSUFFICIENT = "insufficient", "insufficient"

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="gate_evaluations")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="gate_evaluations"
    )
    policy = models.ForeignKey(GatePolicy, on_delete=models.PROTECT, related_name="evaluations")
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    since = models.DateField(help_text="First UTC day of the evidence.")
    until = models.DateField(help_text="Last UTC day of the evidence.")
    snapshot = models.JSONField(help_text="Criteria, figures, bounds, needs and window.")
    sample = models.CharField(
        max_length=5,
        choices=[("all", "every item"), ("audit", "the audit sample of its own decisions")],
        default="all",
        help_text="Which items the evidence came from: all of the window's items (shadow), or "
        "the audit sample of the items the version decided as a canary.",
    )
    evaluated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["model_version", "-created_at"], name="gate_evaluation_latest_idx")
        ]
        permissions = [("evaluate_gate", "Can evaluate a model version's promotion gate")]

    def __str__(self) -> str:
        return f"gate evaluation {self.pk} of {self.model_version_id}: {self.verdict}"
