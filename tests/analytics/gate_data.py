"""A small queue with an FP32 model, its INT8 variant and panels of two and three, for the gate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.contrib.auth.models import User

from analytics.models import ReferenceProfile
from analytics.stats.binning import feature_histograms, reference_bins_by_feature
from deployments.models import ModelVersion, Prediction
from inspections.models import Item, Judgment, Queue

LABELS = ["a", "b", "c"]
WIDTH = 3


@dataclass(frozen=True)
class GateData:
    queue: Queue
    fp32: ModelVersion
    int8: ModelVersion
    inspectors: list[User]


def _version(queue: Queue, version: str, **extra: object) -> ModelVersion:
    return ModelVersion.objects.create(
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
        **extra,
    )


def gate_data_build(*, slug: str = "parts-gate") -> GateData:
    """Return an empty queue, an FP32 version with a reference profile and its INT8 variant."""
    queue = Queue.objects.create(name="Parts", slug=slug, labels=LABELS, input_width=WIDTH)
    fp32 = _version(queue, "1")
    int8 = _version(queue, "1-int8", variant="int8", parent=fp32)
    reference = np.random.default_rng(0).normal(size=(500, WIDTH))
    bins = reference_bins_by_feature(reference)
    ReferenceProfile.objects.create(
        model_version=fp32,
        rows=500,
        fine_edges=[b.fine_edges[1:-1].tolist() for b in bins],
        coarse_edges=[b.coarse_edges[1:-1].tolist() for b in bins],
        feature_counts=[c.tolist() for c in feature_histograms(reference, bins)],
        prediction_counts=[200, 200, 100],
    )
    inspectors = [User.objects.create_user(f"gate-inspector-{n}") for n in range(3)]
    return GateData(queue=queue, fp32=fp32, int8=int8, inspectors=inspectors)


def gate_data_populate(
    data: GateData, *, seed: int, n: int, days: list[date], prefix: str = "g"
) -> None:
    """Add n items over these days: single judgments, panels of two and three, some open."""
    rng = np.random.default_rng(seed)
    for k in range(n):
        day = days[int(rng.integers(0, len(days)))]
        received = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(
            seconds=float(rng.uniform(0, 86_000))
        )
        panel = int(rng.choice([1, 1, 2, 3]))
        truth = int(rng.integers(0, len(LABELS)))
        item = Item.objects.create(
            queue=data.queue,
            external_id=f"{prefix}{k}",
            features=rng.normal(0.3, 1, WIDTH).round(3).tolist(),
            received_at=received,
            judgments_needed=panel,
        )
        judged = panel if rng.random() < 0.9 else panel - 1
        for who in data.inspectors[:judged]:
            label = truth if rng.random() < 0.8 else int(rng.integers(0, len(LABELS)))
            Judgment.objects.create(
                item=item, inspector=who, label=LABELS[label], seconds_spent=1.0
            )
        Item.objects.filter(pk=item.pk).update(
            judgment_count=judged, human_status="complete" if judged == panel else "pending"
        )
        model = truth if rng.random() < 0.85 else int(rng.integers(0, len(LABELS)))
        for version, flip in ((data.fp32, 0.0), (data.int8, 0.05)):
            outcome = rng.random()
            if outcome < 0.05:
                continue
            if outcome < 0.1:
                Prediction.objects.create(
                    item=item,
                    model_version=version,
                    status="error",
                    reason="timeout: 3 s",
                    backend=version.variant,
                    latency_ms=float(rng.uniform(1, 30)),
                )
                continue
            label = int(rng.integers(0, len(LABELS))) if rng.random() < flip else model
            Prediction.objects.create(
                item=item,
                model_version=version,
                status="ok",
                label=LABELS[label],
                confidence=float(rng.uniform(0.3, 1.0)),
                latency_ms=float(rng.uniform(0.5, 20)),
                backend=version.variant,
            )
