"""Reads for the analytics pages: figures per queue and per model version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, F, Q

from analytics.agreement import wilson_interval
from analytics.headlines import HEADLINE_RULES, Headline, finite_or_none
from analytics.selectors import (
    ReportScope,
    report_agreement,
    report_confidence,
    report_drift,
    report_operations,
)
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


@dataclass(frozen=True)
class VersionHeadlines:
    """A model version's headline figures over a range of days, in HEADLINE_RULES order."""

    model_version: ModelVersion
    role: str | None
    figures: list[Headline]


def queue_headlines(*, queue: Queue, since: date, until: date) -> list[VersionHeadlines]:
    """Return the headline figures of every model version of a queue, side by side."""
    roles = dict(Deployment.objects.filter(queue=queue).values_list("model_version_id", "role"))
    rules = {rule.key: rule for rule in HEADLINE_RULES}
    result = []
    for version in ModelVersion.objects.filter(queue=queue).order_by("name", "created_at"):
        if not Prediction.objects.filter(model_version=version).exists():
            # Nothing to report, and no rollup either: its days would all be computed live.
            continue
        scope = ReportScope(queue=queue, model_version=version, since=since, until=until)
        agreement = report_agreement(scope=scope)
        operations = report_operations(scope=scope)
        drift = report_drift(scope=scope)
        confidence = report_confidence(scope=scope)
        p95 = [finite_or_none(p.p95) for p in operations.latency_ms.values() if p.n]
        figures = {
            "agreement": Headline(
                rules["agreement"],
                finite_or_none(agreement.agreement.rate),
                agreement.agreement.low,
                agreement.agreement.high,
                agreement.agreement.n,
            ),
            "kappa": Headline(
                rules["kappa"],
                finite_or_none(agreement.kappa.value),
                finite_or_none(agreement.kappa.low),
                finite_or_none(agreement.kappa.high),
                agreement.kappa.n,
            ),
            "error_rate": Headline(
                rules["error_rate"],
                finite_or_none(operations.error_rate),
                operations.error_low,
                operations.error_high,
                operations.predictions,
            ),
            "drifted_share": Headline(
                rules["drifted_share"], finite_or_none(drift.drifted_share), n=drift.current_rows
            ),
            "ece": Headline(
                rules["ece"], finite_or_none(confidence.expected_calibration_error), n=confidence.n
            ),
            "latency_p95": Headline(
                rules["latency_p95"],
                max((v for v in p95 if v is not None), default=None),
                n=sum(p.n for p in operations.latency_ms.values()),
            ),
        }
        result.append(
            VersionHeadlines(
                model_version=version,
                role=roles.get(version.pk),
                figures=[figures[rule.key] for rule in HEADLINE_RULES],
            )
        )
    return result
