"""A live health check's figures: speed at batch 1, recorded outputs reproduced (no Django).

A version about to go live must answer at batch 1 within the live budget and give, on
items it scored in shadow, the outputs the worker recorded then. ONNX Runtime at batch 1
and the worker's batches differ in the last bits of float32 (about 1e-6), and stored
probabilities are rounded to 6 decimals, so probabilities reproduce when every one is
within PROBABILITY_TOLERANCE (1e-4) of the recorded one: far above that noise, far below
any change of model or preprocessing. Labels must be equal, except where the live top two
probabilities are themselves within the tolerance (a tie may fall either way).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np

PROBABILITY_TOLERANCE = 1e-4
MISMATCHES_SHOWN = 5


@dataclass(frozen=True)
class Reproduction:
    """How many recorded outputs the live path gave again, and the worst difference."""

    compared: int
    reproduced: int
    max_probability_difference: float | None
    mismatches: tuple[str, ...]  # the first few, as "item 12: recorded 3, live 5"


def outputs_compare(
    *,
    item_ids: list[int],
    recorded_labels: list[str],
    recorded_probabilities: np.ndarray,
    live_labels: list[str],
    live_probabilities: np.ndarray,
    tolerance: float = PROBABILITY_TOLERANCE,
) -> Reproduction:
    """Compare the live path's outputs with the recorded ones, row by row."""
    recorded = np.asarray(recorded_probabilities, dtype=np.float64)
    live = np.asarray(live_probabilities, dtype=np.float64)
    if recorded.shape != live.shape:
        raise ValueError(f"recorded {recorded.shape} and live {live.shape} outputs differ in shape")
    if not len(item_ids):
        return Reproduction(0, 0, None, ())
    differences = np.abs(live - recorded).max(axis=1)
    top_two = np.sort(live, axis=1)[:, -2:] if live.shape[1] >= 2 else np.zeros((len(live), 2))
    with np.errstate(invalid="ignore"):  # a row without an answer is inf - inf: never a tie
        tie = (top_two[:, 1] - top_two[:, 0]) <= tolerance
    mismatches: list[str] = []
    reproduced = 0
    for row, item_id in enumerate(item_ids):
        same_label = recorded_labels[row] == live_labels[row] or bool(tie[row])
        if same_label and differences[row] <= tolerance:
            reproduced += 1
        elif len(mismatches) < MISMATCHES_SHOWN:
            difference = (
                f"largest probability difference {differences[row]:.2g}"
                if np.isfinite(differences[row])
                else "no probabilities"
            )
            mismatches.append(
                f"item {item_id}: recorded {recorded_labels[row]}, live {live_labels[row]}"
                f" ({difference})"
            )
    finite = differences[np.isfinite(differences)]
    return Reproduction(
        compared=len(item_ids),
        reproduced=reproduced,
        # Only answered rows have a difference; a row without one is counted as not reproduced.
        max_probability_difference=float(finite.max()) if finite.size else None,
        mismatches=tuple(mismatches),
    )


def latency_p95_ms(latencies: list[float]) -> float | None:
    """Return the exact p95 of a few hundred batch-1 latencies, None without any."""
    return float(np.percentile(np.asarray(latencies, dtype=np.float64), 95)) if latencies else None


@dataclass(frozen=True)
class HealthReport:
    """Whether a version may go live in this process, with every reason it may not."""

    model: str
    passed: bool
    reasons: tuple[str, ...]
    reference_rows: int
    answered: int
    p95_ms: float | None
    budget_ms: float
    reproduction: Reproduction

    def as_dict(self) -> dict[str, object]:
        """Return the report as the audit log keeps it."""
        return asdict(self)


def health_report_make(
    *,
    model: str,
    budget_ms: float,
    latencies: list[float],
    fallbacks: list[str],
    reproduction: Reproduction,
    problems: list[str],
) -> HealthReport:
    """Return the report of a check: pass only when every part of it passed.

    latencies are those of every reference row scored (a fallback's too, at the time it
    took), fallbacks the reasons of rows that got no answer; problems are reasons found on
    the way (nothing to score, nothing recorded).
    """
    reasons = list(problems)
    rows = len(latencies)
    if fallbacks:
        kinds = Counter(reason.split(":", 1)[0] for reason in fallbacks)
        listed = ", ".join(f"{kind} ({count})" for kind, count in kinds.most_common())
        reasons.append(f"{len(fallbacks)} of {rows} reference rows got no answer: {listed}")
    p95 = latency_p95_ms(latencies)
    if p95 is not None and p95 > budget_ms:
        reasons.append(
            f"latency p95 at batch 1 is {p95:.2f} ms over {rows} reference rows, above the live "
            f"budget of {budget_ms:g} ms"
        )
    if reproduction.compared and reproduction.reproduced < reproduction.compared:
        missed = reproduction.compared - reproduction.reproduced
        reasons.append(
            f"{missed} of {reproduction.compared} recorded predictions were not reproduced "
            f"(labels equal, probabilities within {PROBABILITY_TOLERANCE:g}): "
            + "; ".join(reproduction.mismatches)
        )
    return HealthReport(
        model=model,
        passed=not reasons,
        reasons=tuple(reasons),
        reference_rows=rows,
        answered=rows - len(fallbacks),
        p95_ms=p95,
        budget_ms=budget_ms,
        reproduction=reproduction,
    )
