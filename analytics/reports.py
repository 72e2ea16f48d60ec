"""Reads for the analytics pages: figures per queue and per model version."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, F, Q

from analytics.agreement import wilson_interval
from deployments.models import Deployment, ModelVersion, Prediction
from inspections.models import Item, Judgment, Queue


@dataclass(frozen=True)
class VersionFigures:
    model_version: ModelVersion
    role: str | None
    predictions: int
    errors: int
    # Model label vs each human judgment (an item judged twice counts twice).
    compared: int
    agreed: int
    agreement_low: float
    agreement_high: float

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.predictions if self.predictions else None


@dataclass(frozen=True)
class QueueOverview:
    queue: Queue
    items: int
    awaiting_judgment: int
    judgments: int
    double_inspected: int
    versions: list[VersionFigures]


def queue_overview(queue: Queue) -> QueueOverview:
    """Return the headline figures of a queue and of each model version registered for it."""
    counts = Item.objects.filter(queue=queue).aggregate(
        items=Count("id"),
        awaiting=Count("id", filter=Q(human_status=Item.HumanStatus.PENDING)),
        double=Count("id", filter=Q(judgments_needed=2)),
    )
    roles = dict(Deployment.objects.filter(queue=queue).values_list("model_version_id", "role"))
    prediction_counts = {
        row["model_version"]: row
        for row in Prediction.objects.filter(item__queue=queue)
        .values("model_version")
        .annotate(n=Count("id"), errors=Count("id", filter=Q(status=Prediction.Status.ERROR)))
    }
    comparisons = {
        row["item__predictions__model_version"]: row
        for row in Judgment.objects.filter(
            item__queue=queue, item__predictions__status=Prediction.Status.OK
        )
        .values("item__predictions__model_version")
        .annotate(n=Count("id"), agreed=Count("id", filter=Q(label=F("item__predictions__label"))))
    }
    versions = []
    for version in ModelVersion.objects.filter(queue=queue).order_by("name", "created_at"):
        predicted = prediction_counts.get(version.pk, {"n": 0, "errors": 0})
        compared = comparisons.get(version.pk, {"n": 0, "agreed": 0})
        low, high = wilson_interval(compared["agreed"], compared["n"])
        versions.append(
            VersionFigures(
                model_version=version,
                role=roles.get(version.pk),
                predictions=predicted["n"],
                errors=predicted["errors"],
                compared=compared["n"],
                agreed=compared["agreed"],
                agreement_low=low,
                agreement_high=high,
            )
        )
    return QueueOverview(
        queue=queue,
        items=counts["items"],
        awaiting_judgment=counts["awaiting"],
        judgments=Judgment.objects.filter(item__queue=queue).count(),
        double_inspected=counts["double"],
        versions=versions,
    )
