"""Estimate how many more judged items the gate needs, assuming the current rates hold.

Pure: numpy and SciPy only, no Django.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from analytics.stats.sequential import DEFAULT_PRIOR, beta_binomial_clears

if TYPE_CHECKING:
    from analytics.gate.inputs import GateEvidence, GatePolicyValues

# Beyond this many items an estimate is no longer a plan: the rate sits on the line.
HORIZON = 1_000_000
# A label's count may grow this many times over before its estimate stops being a plan.
LABEL_HORIZON = 1_000
# The variance of the paired differences needs a few items before it means anything.
PILOT_DOUBLE_INSPECTED = 10
GROWTH = 1.02


def _label_targets(
    *, hits: np.ndarray, totals: np.ndarray, floor: float, confidence: float
) -> np.ndarray:
    """Return each label's item count at which its recall bound would decide, at its current rate.

    One evaluation of the mixture per candidate size (``beta_binomial_clears``): the
    lower bound reaching the floor, or the upper bound (the mirrored lower bound of
    the miss rate) falling below it.
    """
    steps = GROWTH ** np.arange(0, math.ceil(math.log(LABEL_HORIZON, GROWTH)) + 1)
    sizes = np.ceil(totals[:, None] * steps[None, :])
    successes = np.round(hits[:, None] / totals[:, None] * sizes)
    passes = beta_binomial_clears(
        successes=successes, n=sizes, threshold=floor, confidence=confidence
    )
    fails = beta_binomial_clears(
        successes=sizes - successes,
        n=sizes,
        threshold=1.0 - floor,
        confidence=confidence,
        prior=DEFAULT_PRIOR[::-1],
    )
    decided = passes | fails
    first = np.argmax(decided, axis=1)
    targets = sizes[np.arange(sizes.shape[0]), first]
    return np.where(decided.any(axis=1), targets, totals * LABEL_HORIZON).astype(np.int64)


def noninferiority_target(
    *, mean: float, variance: float, threshold: float, confidence: float
) -> int:
    """Return the number of paired differences at which the empirical-Bernstein bound decides.

    Follows the bets and penalties of ``empirical_bernstein_bounds`` (Waudby-Smith &
    Ramdas 2023) on the [0, 1] scale for a stream whose mean and variance stay at the
    given values (differences in [-1, 1]), and returns the first size at which the
    lower bound reaches the threshold or the upper bound falls below it.
    """
    log_inverse_alpha = math.log(1.0 / (1.0 - confidence))
    unit_variance = max(variance / 4.0, 1e-6)
    t = np.arange(1, HORIZON + 1, dtype=np.float64)
    bets = np.minimum(np.sqrt(2.0 * log_inverse_alpha / (unit_variance * t * np.log1p(t))), 0.5)
    penalty = np.cumsum(4.0 * unit_variance * (-np.log1p(-bets) - bets) / 4.0)
    width = 2.0 * (log_inverse_alpha + penalty) / np.cumsum(bets)
    decided = np.flatnonzero((mean - width >= threshold) | (mean + width < threshold))
    return int(decided[0]) + 1 if decided.size else HORIZON


def needs_estimate(
    *, policy: GatePolicyValues, evidence: GateEvidence
) -> tuple[int, int, dict[str, int]]:
    """Return more judged items overall, more double-inspected items and more per label.

    Per label the figure is more judged items of that label (to reach the per-label
    minimum and to decide its recall bound); overall it is the largest of the overall
    minimum's shortfall and each need divided by its share of judged items.
    """
    confusion = np.asarray(evidence.confusion, dtype=np.int64)
    judged = int(confusion.sum())
    overall = max((policy.min_judged_items or 0) - judged, 0)
    differences = np.asarray(evidence.paired_differences, dtype=np.float64)
    double_needed = 0
    if policy.noninferiority_margin is not None:
        if differences.size < PILOT_DOUBLE_INSPECTED:
            double_needed = PILOT_DOUBLE_INSPECTED - differences.size
        else:
            target = noninferiority_target(
                mean=float(differences.mean()),
                variance=float(differences.var(ddof=1)),
                threshold=-policy.noninferiority_margin,
                confidence=policy.confidence,
            )
            double_needed = max(target - differences.size, 0)
    if judged == 0:
        return overall, double_needed, {}
    if double_needed and differences.size:
        overall = max(overall, math.ceil(double_needed * judged / differences.size))

    totals = confusion.sum(axis=1)
    targets = np.zeros(totals.size, dtype=np.int64)
    if policy.min_per_label is not None:
        targets[:] = policy.min_per_label
    if policy.recall_floor is not None:
        judged_labels = np.flatnonzero(totals >= max(policy.recall_min_items, 1))
        if judged_labels.size:
            recall_targets = _label_targets(
                hits=np.diag(confusion)[judged_labels].astype(np.float64),
                totals=totals[judged_labels].astype(np.float64),
                floor=policy.recall_floor,
                confidence=policy.confidence,
            )
            targets[judged_labels] = np.maximum(targets[judged_labels], recall_targets)
    per_label: dict[str, int] = {}
    for k, label in enumerate(evidence.labels):
        total = int(totals[k])
        if total == 0:
            continue
        more = max(int(targets[k]) - total, 0)
        per_label[label] = more
        if more:
            overall = max(overall, math.ceil(more * judged / total))
    return overall, double_needed, per_label
