"""Reads for the overview page: per queue and range of days, figures per model version.

Everything here comes from the same counts the reports read (daily rollups plus the
open day), gathered once per model version, so the page costs a few rollup reads however
many items a queue holds. Only the number of items awaiting judgment is counted live: it
is the queue's backlog, and an index answers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from analytics.aggregation import queue_period_counts
from analytics.days import day_bounds
from analytics.samples import SAMPLE_DEFAULT, Sample
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
from deployments.models import Decision, Deployment, ModelVersion, Prediction
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
    # Why the version has no figures in this sample, as a sentence; "" when it has some.
    empty_reason: str = ""

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.predictions if self.predictions else None


@dataclass(frozen=True)
class QueueOverview:
    """A queue's counts over a range of days and its model versions side by side.

    With the audit sample, the queue's counts are those of its audit items (each decided
    by one version, so the versions' audit counts add up to the queue's).
    """

    queue: Queue
    items: int
    awaiting_judgment: int
    judgments: int
    double_inspected: int
    versions: list[VersionFigures]
    sample: Sample = SAMPLE_DEFAULT

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


def _has_sample(version: ModelVersion, sample: Sample) -> bool:
    """Return whether the version may have figures in this sample: one indexed look-up.

    A version that never scored an item has no rollup either: gathering its counts would
    aggregate every day of the range live, for zeros. (A DISTINCT over the queue's
    predictions would read them all.)
    """
    rows = Decision if sample == "audit" else Prediction
    return rows.objects.filter(model_version=version).exists()


def queue_overview(
    *, queue: Queue, since: date, until: date, sample: Sample = SAMPLE_DEFAULT
) -> QueueOverview:
    """Return a queue's counts over the UTC days since..until and each version's figures."""
    roles = dict(Deployment.objects.filter(queue=queue).values_list("model_version_id", "role"))
    versions = []
    queue_counts = None
    audit_counts = np.zeros(3, np.int64)  # items, judgments, multi-judged items
    for version in ModelVersion.objects.filter(queue=queue).order_by("name", "created_at"):
        figures: list[Headline] = []
        predictions = errors = compared = agreed = items = 0
        scope = ReportScope(
            queue=queue, model_version=version, since=since, until=until, sample=sample
        )
        if _has_sample(version, sample):
            gathered = scope_counts_gather(scope=scope)
            total = gathered.total
            counts = (total.items, total.judgments, total.multi_judged)
            queue_counts = queue_counts or counts
            audit_counts += counts
            items = total.items
            predictions = total.scored_ok + total.scored_error
            errors = total.scored_error
            compared = int(total.confusion_each.sum())
            agreed = int(total.confusion_each.trace())
            # An empty audit sample has no figures, only the sentence saying why.
            if items or sample == "all":
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
                empty_reason=scope.audit_empty_reason(items),
            )
        )
    start, _ = day_bounds(since)
    _, end = day_bounds(until)
    if sample == "audit":
        # Every audit item is one version's: the versions' audit counts add up.
        queue_counts = (int(audit_counts[0]), int(audit_counts[1]), int(audit_counts[2]))
    elif queue_counts is None:
        # No model scores this queue: there is no rollup to read the queue's counts from.
        queue_counts = queue_period_counts(queue=queue, start=start, end=end)
    items, judgments, multi_judged = queue_counts
    waiting = Item.objects.filter(
        queue=queue,
        human_status=Item.HumanStatus.PENDING,
        received_at__gte=start,
        received_at__lt=end,
    )
    if sample == "audit":
        waiting = waiting.filter(audit_sample=True)
    awaiting = waiting.count()
    return QueueOverview(
        queue=queue,
        items=items,
        awaiting_judgment=awaiting,
        judgments=judgments,
        double_inspected=multi_judged,
        versions=versions,
        sample=sample,
    )
