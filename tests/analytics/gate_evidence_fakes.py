"""Gate evidence made to order, for pages that must show a passing, failing or thin gate."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from analytics.gate.inputs import GateEvidence


def evidence_make(
    *,
    labels: tuple[str, ...] = ("a", "b", "c"),
    per_label: int = 1000,
    agreement: float = 0.98,
    pairs: int = 3000,
    predictions: int = 3000,
    errors: int = 0,
) -> GateEvidence:
    """Return evidence of a model this good on this many judged items per label."""
    k = len(labels)
    hits = round(per_label * agreement)
    confusion = np.zeros((k, k), dtype=np.int64)
    for row in range(k):
        confusion[row, row] = hits
        confusion[row, (row + 1) % k] = per_label - hits
    # Model and inspectors agree with each other alike: the differences are mostly zero.
    differences = np.zeros(pairs, dtype=np.float64)
    differences[::50] = 1.0
    differences[25::50] = -1.0
    return GateEvidence(
        labels=labels,
        confusion=confusion,
        paired_differences=differences,
        predictions=predictions,
        errors=errors,
        latency_p95_ms=12.0,
        max_psi=0.04,
        drifted_share=0.0,
        int8_parity=None,
        is_int8=False,
    )


PASSING = {"per_label": 1000, "agreement": 0.98}
FAILING = {"per_label": 1000, "agreement": 0.98, "errors": 60}
THIN = {"per_label": 30, "agreement": 0.9, "pairs": 12, "predictions": 90}


def evidence_patch(monkeypatch, **kwargs: object) -> Callable[..., GateEvidence]:
    """Make the next gate evaluations read this evidence instead of the rollups."""

    def gather(**_: object) -> GateEvidence:
        return evidence_make(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("analytics.gate.evaluation.gate_evidence_gather", gather)
    return gather
