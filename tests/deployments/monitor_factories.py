"""A version's window of model decisions, audit items and judgments, written as intake would."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from django.contrib.auth.models import User
from django.utils import timezone

from analytics.models import ReferenceProfile
from analytics.stats.binning import feature_histograms, reference_bins_with_range_by_feature
from deployments.models import Decision, ModelVersion
from inspections.models import Item, Judgment

_serial = itertools.count()


def _other(labels: Sequence[str], label: str) -> str:
    return labels[(labels.index(label) + 1) % len(labels)]


def window_write(
    version: ModelVersion,
    *,
    decisions: int,
    audited: int = 0,
    agreed: int = 0,
    failed: int = 0,
    latency_ms: float | Sequence[float] = 5.0,
    inspectors: Sequence[User] = (),
    role: str = "canary",
    at: datetime | None = None,
    features: np.ndarray | None = None,
) -> list[Item]:
    """Write decisions of one version: the first ``audited`` decided items are audit items.

    Of the audit items, the first ``agreed`` get a judgment equal to the decision, the rest
    another label; ``failed`` decisions (the last ones) failed and went to inspectors. With
    two inspectors or more, each audit item is judged by all of them, alike.
    """
    queue = version.queue
    labels = [str(label) for label in queue.labels]
    at = at or timezone.now()
    width = queue.input_width
    latencies = (
        [float(latency_ms)] * decisions
        if isinstance(latency_ms, int | float)
        else [float(v) for v in latency_ms]
    )
    panel = max(1, len(inspectors))
    items = []
    for k in range(decisions):
        audit = k < audited
        row = features[k % len(features)].tolist() if features is not None else [0.0] * width
        items.append(
            Item(
                queue=queue,
                external_id=f"w{next(_serial)}",
                features=row,
                received_at=at,
                route=Item.Route.MODEL,
                audit_sample=audit,
                judgments_needed=panel if audit else 0,
                judgment_count=panel if audit and inspectors else 0,
                human_status=Item.HumanStatus.COMPLETE
                if audit and inspectors
                else Item.HumanStatus.NOT_NEEDED,
            )
        )
    items = Item.objects.bulk_create(items)
    rows = []
    judgments = []
    for k, item in enumerate(items):
        label = labels[k % len(labels)]
        is_failed = k >= decisions - failed
        rows.append(
            Decision(
                item=item,
                model_version=version,
                role=role,
                outcome=Decision.Outcome.FAILED if is_failed else Decision.Outcome.DECIDED,
                label="" if is_failed else label,
                confidence=None if is_failed else 0.9,
                latency_ms=latencies[k % len(latencies)],
                reason="timeout" if is_failed else "",
                created_at=at,
            )
        )
        if k < audited:
            human = label if k < agreed else _other(labels, label)
            judgments += [
                Judgment(item=item, inspector=inspector, label=human, seconds_spent=2.0)
                for inspector in inspectors
            ]
    Decision.objects.bulk_create(rows)
    Judgment.objects.bulk_create(judgments)
    return items


def reference_profile_make(version: ModelVersion, reference: np.ndarray) -> ReferenceProfile:
    """Store the version's reference profile from reference rows, as the worker computes it."""
    bins = reference_bins_with_range_by_feature(reference)
    counts = feature_histograms(reference, bins)
    return ReferenceProfile.objects.create(
        model_version=version,
        rows=len(reference),
        fine_edges=[b.fine_edges[1:-1].tolist() for b in bins],
        coarse_edges=[b.coarse_edges[1:-1].tolist() for b in bins],
        feature_counts=[c.tolist() for c in counts],
        prediction_counts=[0] * len(version.queue.labels),
        format=ReferenceProfile.CURRENT_FORMAT,
        feature_minimum=[b.minimum for b in bins],
        feature_maximum=[b.maximum for b in bins],
        feature_categorical=[b.categorical for b in bins],
    )
