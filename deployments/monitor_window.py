"""Read one canary or live version's sliding window for the rollback monitor.

Every read is capped at the window's latest ``max_rows`` rows, so a look costs the same
at any volume; the figures say how many rows the window held and how many were read.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from django.db import connection

from analytics.models import ReferenceProfile
from analytics.selectors import drift_thresholds
from analytics.services import profile_bins
from analytics.stats.binning import feature_histograms
from analytics.stats.drift_window import window_feature_drift_from_counts
from deployments.models import Decision, ModelVersion
from deployments.monitor_rules import MonitorThresholds, WindowFigures
from inspections.models import MAX_PANEL, Item, Judgment
from shadowlab.finite import is_finite_number


@dataclass(frozen=True)
class WindowRead:
    """A window's figures and what was read to get them."""

    figures: WindowFigures
    decisions_in_window: int
    audit_items_read: int

    def facts(self) -> dict[str, Any]:
        """Return the counts behind the figures, for the stored check."""
        return {
            "decisions_in_window": self.decisions_in_window,
            "decisions_read": self.figures.decisions,
            "audit_items_judged": self.figures.audited,
            "audit_items_split": self.figures.audit_split,
            "drift_rows": self.figures.drift_rows,
            "features": self.figures.features,
            "drifted_features": self.figures.drifted_features,
        }


def _audit_counts(
    version: ModelVersion, start: datetime, end: datetime, max_rows: int
) -> tuple[int, int, int]:
    """Return judged audit items, how many match the decision, and how many split the panel.

    Each audit item counts once, with the label its inspectors gave when all of them
    gave the same one. The confidence sequence needs independent trials: two judgments
    of one item are not (they share the item's difficulty), so counting each judgment
    would make the bound narrower than the evidence. An item whose inspectors disagree
    has no human answer to hold the version to and is counted apart.
    """
    rows = (
        Judgment.objects.filter(
            item__audit_sample=True,
            item__human_status=Item.HumanStatus.COMPLETE,
            item__decision__model_version=version,
            item__decision__outcome=Decision.Outcome.DECIDED,
            item__decision__created_at__gte=start,
            item__decision__created_at__lte=end,
        )
        .order_by("-item__decision__created_at", "-item_id")
        .values_list("item_id", "label", "item__decision__label", "item__judgments_needed")
    )[: max_rows * MAX_PANEL]
    items: dict[int, tuple[set[str], str, int, int]] = {}
    for item_id, label, decided, needed in rows:
        labels, _, seen, _ = items.get(item_id, (set(), decided, 0, needed))
        labels.add(label)
        items[item_id] = (labels, decided, seen + 1, needed)
    judged = agreed = split = 0
    for labels, decided, seen, needed in list(items.values())[:max_rows]:
        if seen < needed:  # the oldest item, cut off by the cap
            continue
        if len(labels) > 1:
            split += 1
            continue
        judged += 1
        agreed += decided in labels
    return judged, agreed, split


def _is_number(value: object) -> bool:
    return is_finite_number(value)


def _rows_checked(features: list[Any], width: int) -> np.ndarray:
    """Return the rows that are lists of ``width`` finite numbers, as a matrix."""
    rows = [row for row in features if isinstance(row, list) and len(row) == width]
    try:
        matrix = np.asarray(rows, dtype=np.float64).reshape(-1, width)
    except (TypeError, ValueError):  # something other than numbers: check value by value
        rows = [row for row in rows if all(map(_is_number, row))]
        matrix = np.asarray(rows, dtype=np.float64).reshape(-1, width)
    return matrix[np.isfinite(matrix).all(axis=1)]


def _inputs_text_sql() -> str:
    """Return SQL giving the latest decisions' inputs as CSV text, one line per item."""
    if connection.vendor == "postgresql":
        joined = "string_agg(btrim(f.features::text, '[]'), E'\\n')"
    else:
        joined = "group_concat(trim(f.features, '[]'), char(10))"
    return f"""SELECT COUNT(*), {joined} FROM (
        SELECT i.features FROM {Decision._meta.db_table} d
        JOIN {Item._meta.db_table} i ON i.id = d.item_id
        WHERE d.model_version_id = %s AND d.created_at >= %s AND d.created_at <= %s
        ORDER BY d.created_at DESC LIMIT %s) f"""  # noqa: S608 - table names only


def _window_inputs(
    version: ModelVersion, start: datetime, end: datetime, max_rows: int, latest: Any
) -> np.ndarray:
    """Return the inputs of the window's latest decisions, rows x the version's width.

    Read as one CSV text parsed in C, as the rollups read features (decoding 20,000 JSON
    arrays one by one took most of a look); if the text holds anything but rows of
    numbers of the right width, the rows are read and checked one by one instead.
    """
    width = version.input_width
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.execute(_inputs_text_sql(), [version.pk, adapt(start), adapt(end), max_rows])
        count, text = cursor.fetchone()
    values = np.empty((0, width))
    with contextlib.suppress(ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        if count:
            values = pd.read_csv(
                io.StringIO(text), header=None, dtype=np.float64, engine="c"
            ).to_numpy()
    if values.shape == (count, width) and np.isfinite(values).all():
        return values
    return _rows_checked(list(latest.values_list("item__features", flat=True)[:max_rows]), width)


def _drift_counts(profile: ReferenceProfile, inputs: np.ndarray) -> tuple[int, int, int]:
    """Return rows compared, features compared and features drifted against the profile."""
    if not len(inputs):
        return 0, len(profile.feature_counts), 0
    bins = profile_bins(profile)
    drift = window_feature_drift_from_counts(
        [np.asarray(counts, dtype=np.int64) for counts in profile.feature_counts],
        feature_histograms(inputs, bins),
        bins,
        drift_thresholds(),
    )
    return len(inputs), len(drift), sum(feature.drifted for feature in drift)


def monitor_window_read(
    *,
    model_version: ModelVersion,
    start: datetime,
    end: datetime,
    thresholds: MonitorThresholds,
    max_rows: int,
) -> WindowRead:
    """Return the version's audit, operations and drift figures on [start, end].

    Decisions are every row the version was asked about (decided, deferred, failed);
    latency is of the decided ones. Drift reads the inputs of all of them: deferral
    sends exactly the unusual inputs to inspectors, so leaving deferred items out
    would hide the drift that matters. Drift is only computed with the minimum sample
    and a reference profile; otherwise its check says why not.
    """
    audited, agreed, split = _audit_counts(model_version, start, end, max_rows)
    window = Decision.objects.filter(
        model_version=model_version, created_at__gte=start, created_at__lte=end
    )
    latest = window.order_by("-created_at")
    operations = list(latest.values_list("outcome", "latency_ms")[:max_rows])
    in_window = len(operations) if len(operations) < max_rows else window.count()
    failed = sum(outcome == Decision.Outcome.FAILED for outcome, _ in operations)
    latencies = np.fromiter(
        (latency for outcome, latency in operations if outcome == Decision.Outcome.DECIDED),
        dtype=np.float64,
    )
    profile = ReferenceProfile.objects.filter(model_version=model_version).first()
    features: int | None = None
    drift_rows, drifted = len(operations), 0
    if profile is not None:
        features = len(profile.feature_counts)
        if thresholds.drifted_share_max is not None and len(operations) >= thresholds.min_decisions:
            inputs = _window_inputs(model_version, start, end, max_rows, latest)
            drift_rows, features, drifted = _drift_counts(profile, inputs)
    return WindowRead(
        figures=WindowFigures(
            audited=audited,
            audit_agreed=agreed,
            audit_split=split,
            decisions=len(operations),
            failed=failed,
            latencies_ms=latencies,
            drift_rows=drift_rows,
            features=features,
            drifted_features=drifted,
        ),
        decisions_in_window=in_window,
        audit_items_read=audited + split,
    )
