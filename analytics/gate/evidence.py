"""Gather a model version's gate evidence from the analytics rollups plus the open day.

The Django side of the gate: it reads what the reports read (``scope_counts_gather``), so
an evaluation costs what a report costs, and hands the pure rules a ``GateEvidence``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date

import numpy as np

from analytics.gate.inputs import GateEvidence
from analytics.selectors import ReportScope, ScopeCounts, report_drift, scope_counts_gather
from analytics.stats.counts import LATENCY_EDGES_MS, PeriodCounts, percentile_from_histogram
from deployments.models import ModelVersion


def latency_p95_ms(total: PeriodCounts) -> float | None:
    """Return the p95 latency over every backend's histogram, None without a timed prediction."""
    if not total.latency:
        return None
    histogram = np.sum(list(total.latency.values()), axis=0)
    p95 = percentile_from_histogram(histogram, LATENCY_EDGES_MS, 95)
    return p95 if math.isfinite(p95) else None


def drift_figures(scope: ReportScope, gathered: ScopeCounts) -> tuple[float | None, float | None]:
    """Return the largest feature PSI and the drifted-feature share the drift report shows.

    Both are window figures; the report's per-day drift (a third of its time) is not needed.
    """
    report = report_drift(scope=scope, gathered=replace(gathered, days=[]))
    if not report.available or not report.features:
        return None, None
    psi = [f.psi for f in report.features if math.isfinite(f.psi)]
    share = report.drifted_share
    return (max(psi) if psi else None), (share if math.isfinite(share) else None)


def _int8_parity(version: ModelVersion, total: PeriodCounts) -> float | None:
    """Return the share of items where an INT8 version and its FP32 parent predict alike.

    Read from the rollups' variant table: this version's label against the parent's on
    the items both scored (the same table the operations report's flip rate reads).
    """
    if version.variant != ModelVersion.Variant.INT8 or version.parent is None:
        return None
    table = total.variants.get(version.parent.key)
    if table is None or int(table.sum()) == 0:
        return None
    return float(np.trace(table) / table.sum())


def gate_evidence_gather(*, model_version: ModelVersion, since: date, until: date) -> GateEvidence:
    """Return everything the gate reads about a model version over inclusive UTC days.

    The confusion table counts every judgment of a scored item (an item on a panel of two
    counts twice), as the agreement report's default rule does: counting only panels
    that agree would drop exactly the hard items. Labels are in the queue's order.
    """
    queue = model_version.queue
    scope = ReportScope(queue=queue, model_version=model_version, since=since, until=until)
    gathered = scope_counts_gather(scope=scope, with_features=True)
    total = gathered.total
    max_psi, drifted_share = drift_figures(scope, gathered)
    return GateEvidence(
        labels=tuple(str(label) for label in queue.labels),
        confusion=total.confusion_each.copy(),
        paired_differences=total.paired,
        predictions=total.scored_ok + total.scored_error,
        errors=total.scored_error,
        latency_p95_ms=latency_p95_ms(total),
        max_psi=max_psi,
        drifted_share=drifted_share,
        int8_parity=_int8_parity(model_version, total),
        is_int8=model_version.variant == ModelVersion.Variant.INT8,
    )
