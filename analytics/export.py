"""CSV export of a scope's joined item-level data, streamed row by row."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from django.db.models import Prefetch

from analytics.days import day_bounds
from analytics.samples import audit_items_q
from analytics.selectors import ReportScope
from deployments.models import Prediction
from inspections.models import Item, Judgment
from shadowlab.csv_cells import csv_lines

CHUNK = 2000


def export_header(scope: ReportScope) -> list[str]:
    """Return the CSV's column names: one column per feature of the queue."""
    return [
        "external_id",
        "received_at",
        *(f"feature_{n}" for n in range(scope.queue.input_width)),
        "human_status",
        "human_labels",
        "inspectors",
        "prediction_status",
        "prediction_label",
        "confidence",
    ]


def export_rows(scope: ReportScope) -> Iterator[list[object]]:
    """Yield one row per item of the scope (of its sample) received in its days, oldest first.

    Human decisions are every judgment of the item in the order they were recorded,
    joined with ";"; prediction columns are empty where the version has not scored the item.
    """
    start, _ = day_bounds(scope.since)
    _, end = day_bounds(scope.until)
    items = Item.objects.filter(queue=scope.queue, received_at__gte=start, received_at__lt=end)
    if scope.sample == "audit":
        items = items.filter(audit_items_q(model_version=scope.model_version))
    items = items.order_by("received_at", "id").prefetch_related(
        Prefetch(
            "judgments",
            queryset=Judgment.objects.select_related("inspector").order_by("created_at", "id"),
        ),
        Prefetch(
            "predictions",
            queryset=Prediction.objects.filter(model_version=scope.model_version),
            to_attr="scope_predictions",
        ),
    )
    for item in items.iterator(chunk_size=CHUNK):
        judgments = list(item.judgments.all())
        prediction = item.scope_predictions[0] if item.scope_predictions else None  # type: ignore[attr-defined]
        yield [
            item.external_id,
            item.received_at.isoformat(),
            *item.features,
            item.human_status,
            ";".join(j.label for j in judgments),
            ";".join(j.inspector.get_username() for j in judgments),
            prediction.status if prediction else "",
            prediction.label if prediction else "",
            "" if prediction is None or prediction.confidence is None else prediction.confidence,
        ]


def export_csv_lines(scope: ReportScope) -> Iterator[str]:
    """Yield the CSV text of the scope, header first, one line at a time.

    Text cells a spreadsheet would run as a formula (an external_id as a client sent it,
    a user name) are written as text: shadowlab.csv_cells.
    """
    return csv_lines(itertools.chain([export_header(scope)], export_rows(scope)))
