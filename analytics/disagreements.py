"""Reads of the disagreements report: judgments whose label differs from one version's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from django.contrib.auth.models import User
from django.db.models import Count, F, Q, QuerySet

from analytics.adjudication import adjudication_outcome_counts
from analytics.config import analytics_settings
from analytics.days import day_bounds
from analytics.judged_predictions import judgments_with_prediction
from analytics.samples import audit_items_q
from analytics.selectors import ReportOptionInvalid, ReportScope, scope_counts_gather
from analytics.summaries.agreement import AdjudicationOutcomes

if TYPE_CHECKING:
    from analytics.judged_predictions import JudgmentWithPrediction

DISAGREEMENT_RULE = (
    "each judgment whose label differs from this model version's (an item judged twice may "
    "appear twice, an item scored by several versions appears with this version's label only)"
)


@dataclass(frozen=True)
class DisagreementFilters:
    """Which disagreements to list; None means any."""

    human_label: str | None = None
    model_label: str | None = None
    confidence_min: float | None = None
    confidence_max: float | None = None
    inspector: str | None = None


@dataclass(frozen=True)
class DisagreementRow:
    """One judgment the model's label differs from."""

    item_id: int
    external_id: str
    received_at: datetime
    human_label: str
    model_label: str
    confidence: float | None
    inspector: str


@dataclass(frozen=True)
class ClassPairCount:
    """How many disagreements have this human label and this model label."""

    human_label: str
    model_label: str
    count: int


@dataclass(frozen=True)
class DisagreementPage:
    """One page of disagreements, the filtered total and the counts per class pair."""

    rule_text: str
    total: int
    page: int
    page_size: int
    pages: int
    rows: list[DisagreementRow]
    class_pairs: list[ClassPairCount]
    # Over the whole scope (queue, model version, days), whatever the filters.
    adjudication: AdjudicationOutcomes
    # Why the list is empty, as a sentence for the page; "" when it is not.
    empty_reason: str = ""


def _labels(scope: ReportScope) -> list[str]:
    return [str(label) for label in scope.queue.labels]


def _class_pairs_from_counts(
    table: np.ndarray, labels: list[str], filters: DisagreementFilters
) -> list[ClassPairCount]:
    """Return disagreement counts per (human, model) label pair from the period's counts."""
    pairs = [
        ClassPairCount(labels[h], labels[m], int(table[h, m]))
        for h in range(len(labels))
        for m in range(len(labels))
        if h != m
        and table[h, m] > 0
        and filters.human_label in (None, labels[h])
        and filters.model_label in (None, labels[m])
    ]
    return sorted(pairs, key=lambda p: (-p.count, p.human_label, p.model_label))


def _disagreeing_judgments(
    scope: ReportScope, filters: DisagreementFilters, start: datetime, end: datetime
) -> QuerySet[JudgmentWithPrediction]:
    """Return the scope's judgments whose label differs from the version's, filtered."""
    # One row per judgment: an item judged twice by two dissenting inspectors lists twice.
    # Every condition on the model's side reads the annotations of the one restricted join.
    condition = Q(item__queue=scope.queue, item__received_at__gte=start, item__received_at__lt=end)
    condition &= ~Q(label=F("model_label"))
    if filters.human_label is not None:
        condition &= Q(label=filters.human_label)
    if filters.model_label is not None:
        condition &= Q(model_label=filters.model_label)
    if filters.confidence_min is not None:
        condition &= Q(model_confidence__gte=filters.confidence_min)
    if filters.confidence_max is not None:
        condition &= Q(model_confidence__lte=filters.confidence_max)
    if filters.inspector is not None:
        condition &= Q(inspector__username=filters.inspector)
    if scope.sample == "audit":
        condition &= audit_items_q(model_version=scope.model_version, prefix="item__")
    return judgments_with_prediction(model_version=scope.model_version).filter(condition)


def _class_pairs(
    table: np.ndarray,
    labels: list[str],
    filters: DisagreementFilters,
    judgments: QuerySet[JudgmentWithPrediction],
) -> list[ClassPairCount]:
    """Return the disagreement counts per class pair, from rollups when the filters allow."""
    if filters.confidence_min is None and filters.confidence_max is None and not filters.inspector:
        # Unfiltered by confidence or inspector, the class-pair totals are the off-diagonal
        # cells of the rolled-up "each judgment" table: no scan of the period's judgments.
        return _class_pairs_from_counts(table, labels, filters)
    return [
        ClassPairCount(row["label"], row["model_label"], row["n"])
        for row in judgments.values("label", "model_label")
        .order_by()
        .annotate(n=Count("id"))
        .order_by("-n", "label", "model_label")
    ]


def _disagreement_rows(
    judgments: QuerySet[JudgmentWithPrediction], page: int, size: int
) -> list[DisagreementRow]:
    """Return one page of disagreeing judgments, newest items first."""
    return [
        DisagreementRow(
            item_id=row["item_id"],
            external_id=row["item__external_id"],
            received_at=row["item__received_at"],
            human_label=row["label"],
            model_label=row["model_label"],
            confidence=row["model_confidence"],
            inspector=row["inspector__username"],
        )
        for row in judgments.order_by("-item__received_at", "-item_id", "id").values(
            "item_id",
            "item__external_id",
            "item__received_at",
            "label",
            "model_label",
            "model_confidence",
            "inspector__username",
        )[(page - 1) * size : page * size]
    ]


def _filters_check(scope: ReportScope, filters: DisagreementFilters) -> None:
    """Raise ReportOptionInvalid when a filter names a label or inspector there is none of."""
    labels = _labels(scope)
    for name, label in (("human_label", filters.human_label), ("model_label", filters.model_label)):
        if label is not None and label not in labels:
            raise ReportOptionInvalid(
                f"{name} must be a label of queue '{scope.queue.slug}' ({', '.join(labels)}), "
                f"got {label[:40]!r}"
            )
    inspector = filters.inspector
    if inspector is not None and (
        len(inspector) > User._meta.get_field("username").max_length  # type: ignore[operator]
        or not User.objects.filter(username=inspector).exists()
    ):
        raise ReportOptionInvalid(f"there is no inspector {inspector[:40]!r}")


def _empty_reason(scope: ReportScope, filters: DisagreementFilters, judged: int) -> str:
    """Return why no disagreement is listed, as a sentence."""
    if judged == 0:
        return (
            f"No judged item in this range has a prediction from {scope.model_version.key} yet: "
            "disagreements need items both an inspector and this version have labelled."
        )
    if filters != DisagreementFilters():
        return "No disagreement matches these filters."
    return f"The model agreed with all {judged} compared judgments in this range."


def report_disagreements(
    *,
    scope: ReportScope,
    filters: DisagreementFilters | None = None,
    page: int = 1,
    page_size: int | None = None,
) -> DisagreementPage:
    """Return a page of judgments the model disagreed with, newest items first.

    A page past the last shows the last one. Raise ReportOptionInvalid when a filter names
    a label the queue does not have or an inspector there is none of.
    """
    filters = filters or DisagreementFilters()
    _filters_check(scope, filters)
    size = page_size or analytics_settings().disagreements_page_size
    start, _ = day_bounds(scope.since)
    _, end = day_bounds(scope.until)
    # The rolled-up "each judgment" table of the scope: class-pair totals and what awaits
    # adjudication come from it, with no scan of the period's judgments.
    gathered = scope_counts_gather(scope=scope, with_features=False)
    table = gathered.total.confusion_each
    judgments = _disagreeing_judgments(scope, filters, start, end)
    pairs = _class_pairs(table, _labels(scope), filters, judgments)
    total = sum(pair.count for pair in pairs)
    pages = max(1, -(-total // size))
    page = min(max(page, 1), pages)
    rows = _disagreement_rows(judgments, page, size)
    judged = int(table.sum())
    disagreeing = judged - int(table.trace())
    return DisagreementPage(
        rule_text=DISAGREEMENT_RULE,
        total=total,
        page=page,
        page_size=size,
        pages=pages,
        rows=rows,
        class_pairs=pairs,
        adjudication=adjudication_outcome_counts(
            queue=scope.queue,
            model_version=scope.model_version,
            start=start,
            end=end,
            disagreeing_judgments=disagreeing,
            audit_only=scope.sample == "audit",
        ),
        empty_reason=""
        if total
        else scope.audit_empty_reason(gathered.total.items)
        or _empty_reason(scope, filters, judged),
    )
