"""Run a model over a batch and turn its output into outcomes, isolating the rows that fail."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deployments.models import Prediction
from deployments.runtime import ModelRunner


@dataclass(frozen=True)
class Outcome:
    """One prediction to store: ok with label and probabilities, or error with a reason."""

    item_id: int
    label: str = ""
    probabilities: list[float] | None = None
    confidence: float | None = None
    latency_ms: float | None = None
    reason: str = ""

    @property
    def status(self) -> str:
        return Prediction.Status.ERROR if self.reason else Prediction.Status.OK


def outcomes_infer(
    runner: ModelRunner, labels: list[str], ids: list[int], matrix: np.ndarray
) -> tuple[list[Outcome], float]:
    """Score a matrix; if the batch fails, score row by row to isolate the failing rows."""
    try:
        batches = [(ids, runner.predict(matrix))]
    except Exception:
        batches = []
        failed: list[Outcome] = []
        for item_id, row in zip(ids, matrix, strict=True):
            try:
                batches.append(([item_id], runner.predict(row[None, :])))
            except Exception as exc:
                failed.append(
                    Outcome(item_id, reason=f"inference failed: {type(exc).__name__}: {exc}")
                )
        if not batches:
            return failed, 0.0
    else:
        failed = []
    outcomes = failed
    seconds = 0.0
    for batch_ids, batch in batches:
        seconds += batch.seconds
        per_item_ms = batch.seconds * 1000.0 / len(batch_ids)
        finite = np.isfinite(batch.probabilities).all(axis=1)
        rounded = np.round(batch.probabilities.astype(np.float64), 6)
        confidences = rounded.max(axis=1)
        for offset, item_id in enumerate(batch_ids):
            if not finite[offset]:
                outcomes.append(Outcome(item_id, reason="model returned non-finite probabilities"))
                continue
            outcomes.append(
                Outcome(
                    item_id,
                    label=labels[int(batch.label_indices[offset])],
                    probabilities=rounded[offset].tolist(),
                    confidence=float(confidences[offset]),
                    latency_ms=per_item_ms,
                )
            )
    return outcomes, seconds
