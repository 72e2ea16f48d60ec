"""Read one canary or live version's sliding window for the rollback monitor.

Every read is capped at the window's latest ``max_rows`` rows, so a look costs the same
at any volume; the figures say how many rows the window held and how many were read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from analytics.models import ReferenceProfile
from analytics.selectors import drift_thresholds
from analytics.services import profile_bins
from analytics.stats.binning import feature_histograms
from analytics.stats.drift_window import window_feature_drift_from_counts
from deployments.models import Decision, ModelVersion
from deployments.monitor_rules import MonitorThresholds, WindowFigures
from inspections.models import MAX_PANEL, Item, Judgment


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


def _drift_counts(
    profile: ReferenceProfile, features: list[Any], width: int
) -> tuple[int, int, int]:
    """Return rows compared, features compared and features drifted against the profile."""
    rows = [
        row
        for row in features
        if isinstance(row, list)
        and len(row) == width
        and all(
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            for value in row
        )
    ]
    if not rows:
        return 0, width, 0
    bins = profile_bins(profile)
    matrix = np.asarray(rows, dtype=np.float64)
    drift = window_feature_drift_from_counts(
        [np.asarray(counts, dtype=np.int64) for counts in profile.feature_counts],
        feature_histograms(matrix, bins),
        bins,
        drift_thresholds(),
    )
    return len(rows), len(drift), sum(feature.drifted for feature in drift)


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
    latest = window.order_by("-created_at", "-id")
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
            inputs = list(latest.values_list("item__features", flat=True)[:max_rows])
            drift_rows, features, drifted = _drift_counts(
                profile, inputs, model_version.input_width
            )
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
