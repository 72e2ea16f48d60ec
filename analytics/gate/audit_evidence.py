"""Gather a canary's gate evidence from its own audit sample, since it took its present step.

The audit sample is the share of the items a canary decided that inspectors also judged,
blind. Its evidence is read from the raw rows of that window only: the queue's items with
audit_sample set, received since the step, that the version decided (Decision outcome
"decided"), with their judgments. The model's answer is the Decision's label, what the
canary said at intake. From those items the figures are the ones the rollups' raw path
(analytics.aggregation) gives on the same items: the confusion table over every judgment,
the paired differences of complete panels in arrival order, drift of their features
against the reference profile.

Errors and latency are read from every decision the version made in the window (decided,
deferred and failed), not from the audit items: an audit item is a decided one by
definition, so its error rate would always be 0 and its latencies would miss the
timeouts. Both reads are bounded: one grouped count, and the latencies of at most
LATENCY_ROWS_MAX recent decisions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db.models import Count, QuerySet

from analytics.gate.evidence import drift_figures, latency_p95_ms
from analytics.gate.inputs import GateEvidence
from analytics.selectors import ReportScope, ScopeCounts, reference_profile_get
from analytics.services import profile_bins
from analytics.stats.binning import feature_histograms
from analytics.stats.counts import LATENCY_EDGES_MS, PeriodCounts, log_histogram
from analytics.stats.feature_extremes import feature_extremes
from analytics.stats.paired import paired_differences_from_counts
from deployments.models import Decision, ModelVersion
from inspections.models import Item, Judgment
from shadowlab.finite import is_finite_number

# A canary soaking at a step for weeks would otherwise make every look read more rows: the
# first items in arrival order are kept, a choice made before any label is known.
AUDIT_ITEMS_MAX = 200_000
LATENCY_ROWS_MAX = 50_000
LATENCY_BACKEND = "live"


@dataclass(frozen=True)
class AuditSample:
    """A canary's evidence on its audit sample, with how much of each kind it rests on."""

    evidence: GateEvidence
    audit_items: int
    judged_items: int
    decisions: dict[str, int]  # outcome -> decisions since the step
    capped: bool  # more audit items than AUDIT_ITEMS_MAX: the first ones were read


def _audit_items(model_version: ModelVersion, since: datetime, until: datetime) -> QuerySet[Item]:
    return Item.objects.filter(
        queue_id=model_version.queue_id,
        audit_sample=True,
        received_at__gte=since,
        received_at__lt=until,
        decision__model_version=model_version,
        decision__outcome=Decision.Outcome.DECIDED,
    )


def _judgments(
    model_version: ModelVersion, since: datetime, until: datetime
) -> dict[int, list[str]]:
    """Return the labels inspectors gave each audit item, in the order they judged."""
    rows = (
        Judgment.objects.filter(item__in=_audit_items(model_version, since, until).values("pk"))
        .order_by("item_id", "created_at", "id")
        .values_list("item_id", "label")
    )
    labels: dict[int, list[str]] = defaultdict(list)
    for item_id, label in rows.iterator(chunk_size=5000):
        labels[item_id].append(label)
    return labels


def _decisions(model_version: ModelVersion, since: datetime, until: datetime) -> dict[str, int]:
    rows = (
        Decision.objects.filter(
            model_version=model_version, created_at__gte=since, created_at__lt=until
        )
        .values("outcome")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {outcome: 0 for outcome in Decision.Outcome.values}
    counts.update({row["outcome"]: int(row["n"]) for row in rows})
    return counts


def _latencies(model_version: ModelVersion, since: datetime, until: datetime) -> list[float]:
    """Return the latencies of the version's most recent decisions in the window (bounded)."""
    return list(
        Decision.objects.filter(
            model_version=model_version, created_at__gte=since, created_at__lt=until
        )
        .order_by("-created_at", "-id")
        .values_list("latency_ms", flat=True)[:LATENCY_ROWS_MAX]
    )


def _panel_differences(
    items: list[tuple[int, str, str]], judged: dict[int, list[str]], index: dict[str, int]
) -> np.ndarray:
    """Return the paired differences of complete panels of two or more, in arrival order."""
    counts = []
    for item_id, status, model_label in items:
        labels = judged.get(item_id, [])
        if status != Item.HumanStatus.COMPLETE or len(labels) < 2 or model_label not in index:
            continue
        votes: dict[str, int] = defaultdict(int)
        for label in labels:
            votes[label] += 1
        agreeing_pairs = sum(n * (n - 1) // 2 for n in votes.values())
        counts.append((len(labels), votes.get(model_label, 0), agreeing_pairs))
    if not counts:
        return np.zeros(0, np.float64)
    judgments, agrees, pairs = np.asarray(counts, np.int64).T
    return paired_differences_from_counts(
        judgments=judgments, model_agrees=agrees, agreeing_pairs=pairs
    )


def _feature_matrix(features: list[object], width: int) -> np.ndarray:
    rows = [
        row
        for row in features
        if isinstance(row, list) and len(row) == width and all(map(is_finite_number, row))
    ]
    return np.asarray(rows, dtype=np.float64).reshape(-1, width)


def audit_evidence_gather(
    *, model_version: ModelVersion, since: datetime, until: datetime
) -> AuditSample:
    """Return the gate's evidence on the version's audit sample received in [since, until)."""
    queue = model_version.queue
    labels = [str(label) for label in queue.labels]
    index = {label: k for k, label in enumerate(labels)}
    k = len(labels)
    rows = list(
        _audit_items(model_version, since, until)
        .order_by("received_at", "id")
        .values_list("id", "human_status", "decision__label", "features")[: AUDIT_ITEMS_MAX + 1]
    )
    capped = len(rows) > AUDIT_ITEMS_MAX
    rows = rows[:AUDIT_ITEMS_MAX]
    kept = {row[0] for row in rows}
    judged = {
        item_id: found
        for item_id, found in _judgments(model_version, since, until).items()
        if item_id in kept
    }

    confusion = np.zeros((k, k), np.int64)
    for item_id, _, model_label, _ in rows:
        if model_label not in index:
            continue
        for human in judged.get(item_id, []):
            if human in index:
                confusion[index[human], index[model_label]] += 1
    model_labels = [index[row[2]] for row in rows if row[2] in index]

    profile = reference_profile_get(model_version=model_version)
    bins = profile_bins(profile) if profile else None
    scored = _feature_matrix([row[3] for row in rows], len(bins)) if bins is not None else None
    decisions = _decisions(model_version, since, until)
    latencies = _latencies(model_version, since, until)
    total = PeriodCounts(
        n_classes=k,
        items=len(rows),
        scored_ok=len(rows),
        confusion_each=confusion,
        label_counts=np.bincount(np.asarray(model_labels, np.int64), minlength=k).astype(np.int64),
        latency={LATENCY_BACKEND: log_histogram(latencies, LATENCY_EDGES_MS)} if latencies else {},
        features=None if scored is None or bins is None else feature_histograms(scored, bins),
        feature_extremes=None if scored is None else feature_extremes(scored, scored.shape[1]),
        paired=_panel_differences([row[:3] for row in rows], judged, index),
    )
    gathered = ScopeCounts(
        days=[],
        total=total,
        bins=bins,
        reference_counts=profile.feature_counts if profile else None,
        reference_predictions=profile.prediction_counts if profile else None,
    )
    scope = ReportScope(
        queue=queue, model_version=model_version, since=since.date(), until=until.date()
    )
    max_psi, drifted_share = drift_figures(scope, gathered)
    evidence = GateEvidence(
        labels=tuple(labels),
        confusion=confusion,
        paired_differences=total.paired,
        predictions=sum(decisions.values()),
        errors=decisions[Decision.Outcome.FAILED],
        latency_p95_ms=latency_p95_ms(total),
        max_psi=max_psi,
        drifted_share=drifted_share,
        # The FP32 parent does not score the items a canary decides: see audit_rules.
        int8_parity=None,
        is_int8=model_version.variant == ModelVersion.Variant.INT8,
    )
    return AuditSample(
        evidence=evidence,
        audit_items=len(rows),
        judged_items=len(judged),
        decisions=decisions,
        capped=capped,
    )
