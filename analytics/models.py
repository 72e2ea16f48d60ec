from django.conf import settings
from django.db import models
from django.db.models import Q

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
    """A model version's reference data reduced to bins and counts, computed once."""

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
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"reference profile of {self.model_version_id}"


class DailyRollup(models.Model):
    """Every count of one queue, model version and closed day (see analytics.counts)."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="rollups")
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.CASCADE, related_name="rollups"
    )
    day = models.DateField(help_text="UTC day the items were received.")
    items = models.PositiveIntegerField()
    counts = models.JSONField(help_text="analytics.counts.period_counts_to_json of the day.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["queue", "model_version", "day"]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "model_version", "day"], name="rollup_one_per_version_and_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model_version_id} on {self.day}"


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
