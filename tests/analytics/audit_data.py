"""A queue on live traffic: a live and a canary version deciding items, an audit sample.

Rows are made directly, as intake, the worker and inspectors would leave them: each item
routed to the model has a Decision of the live or canary version (decided, deferred or
failed); a share of the decided ones is in the audit sample and judged; items routed to
inspectors, deferred and failed ones are judged too; the worker's predictions of both
versions (and of a shadow version) cover every item.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.contrib.auth.models import User

from analytics.models import ReferenceProfile
from analytics.stats.binning import feature_histograms, reference_bins_with_range_by_feature
from deployments.models import Decision, ModelVersion, Prediction
from inspections.models import Item, Judgment, Queue

LABELS = ["a", "b", "c"]
WIDTH = 3


@dataclass(frozen=True)
class AuditData:
    queue: Queue
    live: ModelVersion
    canary: ModelVersion
    shadow: ModelVersion
    inspectors: list[User]


def _version(queue: Queue, version: str) -> ModelVersion:
    made = ModelVersion.objects.create(
        queue=queue,
        name="m",
        version=version,
        onnx_file="models/m.onnx",
        sha256="0" * 64,
        size_bytes=1,
        labels=["c", "a", "b"],  # model order differs from the queue's on purpose
        input_width=WIDTH,
        input_name="x",
        probability_output="p",
    )
    reference = np.random.default_rng(0).normal(size=(500, WIDTH))
    bins = reference_bins_with_range_by_feature(reference)
    ReferenceProfile.objects.create(
        model_version=made,
        rows=500,
        fine_edges=[b.fine_edges[1:-1].tolist() for b in bins],
        coarse_edges=[b.coarse_edges[1:-1].tolist() for b in bins],
        feature_counts=[c.tolist() for c in feature_histograms(reference, bins)],
        prediction_counts=[200, 200, 100],
        format=ReferenceProfile.CURRENT_FORMAT,
        feature_minimum=[b.minimum for b in bins],
        feature_maximum=[b.maximum for b in bins],
        feature_categorical=[b.categorical for b in bins],
    )
    return made


def audit_data_build(*, slug: str = "parts-audit") -> AuditData:
    """Return an empty queue with a live, a canary and a shadow version, and three inspectors."""
    queue = Queue.objects.create(name="Parts", slug=slug, labels=LABELS, input_width=WIDTH)
    inspectors = [User.objects.create_user(f"{slug}-inspector-{n}") for n in range(3)]
    return AuditData(
        queue=queue,
        live=_version(queue, "1"),
        canary=_version(queue, "2"),
        shadow=_version(queue, "3"),
        inspectors=inspectors,
    )


def _judge(
    data: AuditData, item: Item, rng: np.random.Generator, truth: int, accuracy: float
) -> None:
    panel = item.judgments_needed
    judged = panel if rng.random() < 0.9 else panel - 1
    for who in data.inspectors[:judged]:
        label = truth if rng.random() < accuracy else int(rng.integers(0, len(LABELS)))
        Judgment.objects.create(item=item, inspector=who, label=LABELS[label], seconds_spent=1.0)
    Item.objects.filter(pk=item.pk).update(
        judgment_count=judged, human_status="complete" if judged == panel else "pending"
    )


def _predict(
    version: ModelVersion,
    item: Item,
    rng: np.random.Generator,
    label: int,
    confidence: float,
    received: datetime,
) -> None:
    if rng.random() < 0.05:
        Prediction.objects.create(
            item=item,
            model_version=version,
            status="error",
            reason="timeout: 3 s",
            backend="fp32",
            latency_ms=float(rng.uniform(1, 30)),
        )
    else:
        Prediction.objects.create(
            item=item,
            model_version=version,
            status="ok",
            label=LABELS[label],
            confidence=confidence,
            latency_ms=float(rng.uniform(0.5, 20)),
            backend="fp32",
        )
    Prediction.objects.filter(item=item, model_version=version).update(
        created_at=received + timedelta(seconds=float(rng.uniform(0.1, 30)))
    )


def audit_data_populate(
    data: AuditData,
    *,
    seed: int,
    n: int,
    days: list[date],
    prefix: str = "i",
    audit_rate: float = 0.4,
    deciders: tuple[str, ...] = ("live", "canary"),
    inspector_accuracy: float = 0.85,
    model_boost: float = 0.0,
) -> None:
    """Add n items over these days, routed, decided, audited, judged and scored.

    The model is right with probability its confidence plus model_boost.
    """
    rng = np.random.default_rng(seed)
    for k in range(n):
        day = days[int(rng.integers(0, len(days)))]
        received = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
            seconds=float(rng.uniform(0, 86_000))
        )
        truth = int(rng.integers(0, len(LABELS)))
        # The model is right more often when it is confident.
        confidence = float(rng.uniform(0.3, 1.0))
        right = rng.random() < confidence + model_boost
        model = truth if right else int(rng.integers(0, len(LABELS)))
        route = rng.random()
        decider = getattr(data, deciders[int(rng.integers(0, len(deciders)))]) if deciders else None
        item = Item.objects.create(
            queue=data.queue,
            external_id=f"{prefix}{k}",
            features=rng.normal(0.3, 1, WIDTH).round(3).tolist(),
            received_at=received,
            judgments_needed=int(rng.choice([1, 1, 2, 3])),
            route="human" if decider is None or route < 0.2 else "model",
        )
        if item.route == "model":
            assert decider is not None
            outcome = "decided" if route < 0.85 else ("deferred" if route < 0.95 else "failed")
            Decision.objects.create(
                item=item,
                model_version=decider,
                role="live" if decider == data.live else "canary",
                outcome=outcome,
                label="" if outcome == "failed" else LABELS[model],
                confidence=None if outcome == "failed" else confidence,
                latency_ms=float(rng.uniform(1, 20)),
                reason="timeout" if outcome == "failed" else "",
                created_at=received,
            )
            audited = outcome == "decided" and rng.random() < audit_rate
            if outcome == "decided" and not audited:
                Item.objects.filter(pk=item.pk).update(
                    human_status="not_needed", judgments_needed=0
                )
            else:
                Item.objects.filter(pk=item.pk).update(audit_sample=audited)
                item.refresh_from_db()
                _judge(data, item, rng, truth, inspector_accuracy)
        else:
            _judge(data, item, rng, truth, inspector_accuracy)
        for version in (data.live, data.canary, data.shadow):
            _predict(version, item, rng, model, confidence, received)


def audit_item_ids(data: AuditData, version: ModelVersion) -> set[int]:
    """Return the ids of the version's audit sample, from the definition."""
    return set(
        Item.objects.filter(
            queue=data.queue,
            audit_sample=True,
            decision__model_version=version,
            decision__outcome="decided",
        ).values_list("id", flat=True)
    )
