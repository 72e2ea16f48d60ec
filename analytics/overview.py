"""Reads for the overview page: per queue and range of days, figures per model version.

Everything here comes from the same counts the reports read (daily rollups plus the
open day), gathered once per model version, so the page costs a few rollup reads however
many items a queue holds. Only the number of items awaiting judgment is counted live: it
is the queue's backlog, and an index answers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from analytics.aggregation import queue_period_counts
from analytics.days import day_bounds
from analytics.selectors import (
    ReportScope,
    ScopeCounts,
    report_agreement,
    report_confidence,
    report_drift,
    report_operations,
    scope_counts_gather,
)
from analytics.stats.agreement import wilson_interval
from analytics.summaries.headlines import (
    HEADLINE_RULE,
    HEADLINE_RULES,
    Headline,
    finite_or_none,
)
from deployments.models import Deployment, ModelVersion, Prediction
from inspections.models import Item, Queue


@dataclass(frozen=True)
class VersionFigures:
    """One model version's counts over the range and its headline figures."""

    model_version: ModelVersion
    role: str | None
    predictions: int
    errors: int
    # Model label vs each human judgment (an item judged several times counts per judgment).
    compared: int
    agreed: int
    agreement_low: float
    agreement_high: float
    # In HEADLINE_RULES order; empty when the version has scored nothing yet.
    figures: list[Headline]

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.predictions if self.predictions else None


@dataclass(frozen=True)
class QueueOverview:
    """A queue's counts over a range of days and its model versions side by side."""

    queue: Queue
    items: int
    awaiting_judgment: int
    judgments: int
    double_inspected: int
    versions: list[VersionFigures]

    @property
    def scored_versions(self) -> list[VersionFigures]:
        return [version for version in self.versions if version.figures]


def _headlines(scope: ReportScope, gathered: ScopeCounts) -> list[Headline]:
    """Return the version's headline figures, each with the light its report decided."""
    agreement = report_agreement(scope=scope, gathered=gathered)
    operations = report_operations(scope=scope, gathered=gathered)
    drift = report_drift(scope=scope, gathered=gathered)
    confidence = report_confidence(scope=scope, gathered=gathered)
    slowest = operations.latency_ms.get(operations.slowest_backend)
    ece = finite_or_none(confidence.expected_calibration_error)
    figures = {
        "agreement": Headline(
            HEADLINE_RULE["agreement"],
            finite_or_none(agreement.agreement.rate),
            finite_or_none(agreement.agreement.low),
            finite_or_none(agreement.agreement.high),
            agreement.agreement.n,
            agreement.agreement_light,
        ),
        "kappa": Headline(
            HEADLINE_RULE["kappa"],
            finite_or_none(agreement.kappa.value),
            finite_or_none(agreement.kappa.low),
            finite_or_none(agreement.kappa.high),
            agreement.kappa.n,
            agreement.kappa_light,
        ),
        "error_rate": Headline(
            HEADLINE_RULE["error_rate"],
            finite_or_none(operations.error_rate),
            finite_or_none(operations.error_low) if operations.predictions else None,
            finite_or_none(operations.error_high) if operations.predictions else None,
            operations.predictions,
            operations.error_light,
        ),
        "drifted_share": Headline(
            HEADLINE_RULE["drifted_share"],
            finite_or_none(drift.drifted_share),
            None,
            None,
            drift.current_rows,
            drift.drifted_light,
            note=f"{drift.drifted_count} of {len(drift.features)} features"
            if drift.available
            else "",
        ),
        "ece": Headline(
            HEADLINE_RULE["ece"],
            ece,
            None,
            None,
            confidence.n,
            confidence.ece_light,
            note=f"a calibrated model shows {confidence.ece_if_calibrated:.3f} at this n"
            if ece is not None
            else "",
        ),
        "latency_p95": Headline(
            HEADLINE_RULE["latency_p95"],
            finite_or_none(slowest.p95) if slowest else None,
            finite_or_none(slowest.p95_low) if slowest else None,
            finite_or_none(slowest.p95_high) if slowest else None,
            slowest.n if slowest else 0,
            operations.latency_light,
            note=operations.slowest_backend,
        ),
    }
    return [figures[rule.key] for rule in HEADLINE_RULES]


def queue_overview(*, queue: Queue, since: date, until: date) -> QueueOverview:
    """Return a queue's counts over the UTC days since..until and each version's figures."""
    roles = dict(Deployment.objects.filter(queue=queue).values_list("model_version_id", "role"))
    versions = []
    queue_counts = None
    for version in ModelVersion.objects.filter(queue=queue).order_by("name", "created_at"):
        figures: list[Headline] = []
        predictions = errors = compared = agreed = 0
        # One indexed look-up per version (a DISTINCT over the queue's predictions reads them all).
        if Prediction.objects.filter(model_version=version).exists():
            # A version that never scored an item has no rollup either: gathering its
            # counts would aggregate every day of the range live, for zeros.
            scope = ReportScope(queue=queue, model_version=version, since=since, until=until)
            gathered = scope_counts_gather(scope=scope)
            total = gathered.total
            queue_counts = queue_counts or (total.items, total.judgments, total.multi_judged)
            predictions = total.scored_ok + total.scored_error
            errors = total.scored_error
            compared = int(total.confusion_each.sum())
            agreed = int(total.confusion_each.trace())
            figures = _headlines(scope, gathered)
        low, high = wilson_interval(agreed, compared)
        versions.append(
            VersionFigures(
                model_version=version,
                role=roles.get(version.pk),
                predictions=predictions,
                errors=errors,
                compared=compared,
                agreed=agreed,
                agreement_low=low,
                agreement_high=high,
                figures=figures,
            )
        )
    start, _ = day_bounds(since)
    _, end = day_bounds(until)
    if queue_counts is None:
        # No model scores this queue: there is no rollup to read the queue's counts from.
        queue_counts = queue_period_counts(queue=queue, start=start, end=end)
    items, judgments, multi_judged = queue_counts
    awaiting = Item.objects.filter(
        queue=queue,
        human_status=Item.HumanStatus.PENDING,
        received_at__gte=start,
        received_at__lt=end,
    ).count()
    return QueueOverview(
        queue=queue,
        items=items,
        awaiting_judgment=awaiting,
        judgments=judgments,
        double_inspected=multi_judged,
        versions=versions,
    )
