"""What a deferral threshold buys on a report's items, and which thresholds to suggest.

No Django import. A queue defers to inspectors every model decision less confident than
its threshold, so at threshold t the model decides the items of confidence >= t: the
coverage curve's point at t. Figures come from the coverage bins a rollup stores (100
left-closed bins of width 0.01), exact at t = 0, 0.01, ..., 0.99; any other t is read at
the bin edge below it, and says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.stats.agreement import wilson_interval
from analytics.stats.calibration import GRID_TOLERANCE, ConfidenceBins

# Agreement levels a threshold is suggested for; the gate's agreement floor joins them.
DEFERRAL_TARGETS = (0.90, 0.95, 0.98, 0.99)

SUGGESTION_METHOD = (
    "for each agreement level, the lowest threshold at which the model's agreement with the "
    "human decision on the items at or above it has a 95% Wilson lower bound at or above the "
    "level, over at least {min_items} such items: the most items decided for that level"
)

AUDIT_CAVEAT = (
    "The audit sample holds only items the model decided, none it deferred: below the "
    "threshold in force when they arrived it shows no items, so it cannot tell what a lower "
    "threshold would decide. Switch to every item for that."
)


@dataclass(frozen=True)
class ThresholdFigures:
    """Coverage and agreement of the items a threshold lets the model decide."""

    threshold: float
    # The bin edge the figures are read at, and whether that is the threshold itself.
    read_at: float
    exact: bool
    # Items with a consensus decision and a prediction, and those at or above the threshold.
    n: int
    covered: int
    share: float | None
    agreed: int
    agreement: float | None
    low: float | None
    high: float | None
    # Fewer covered items than the minimum sample: the figures are shown, not relied on.
    too_few: bool
    sentence: str


@dataclass(frozen=True)
class ThresholdSuggestion:
    """The threshold suggested for one agreement level, or why there is none."""

    target: float
    figures: ThresholdFigures | None
    sentence: str


@dataclass(frozen=True)
class DeferralReport:
    """The threshold in force with its figures, and the thresholds suggested."""

    current: ThresholdFigures
    suggestions: list[ThresholdSuggestion]
    min_items: int
    method: str
    # Why the figures may mislead on this sample, as a sentence; "" when they do not.
    caveat: str


def _from(values: np.ndarray) -> np.ndarray:
    """Return, per bin, the sum of this bin and every bin above it."""
    return np.cumsum(values[::-1])[::-1]


def _bin_index(bins: ConfidenceBins, threshold: float) -> tuple[int, bool]:
    """Return the bin whose lower edge the threshold is read at, and whether it is exact."""
    starts = bins.edges[:-1]
    index = int(np.searchsorted(starts, threshold + GRID_TOLERANCE, side="right")) - 1
    index = min(max(index, 0), starts.size - 1)
    exact = abs(float(starts[index]) - threshold) <= GRID_TOLERANCE
    return index, exact


def _figures_at(
    bins: ConfidenceBins, threshold: float, index: int, exact: bool, min_items: int
) -> ThresholdFigures:
    covered = int(_from(bins.count)[index])
    agreed = int(_from(bins.correct)[index])
    n = bins.n
    read_at = float(bins.edges[index])
    too_few = covered < min_items
    low = high = agreement = share = None
    if n == 0:
        sentence = (
            "No scored item in this range has a complete, unanimous human decision yet, so "
            f"what threshold {threshold:g} would decide is unknown."
        )
    elif covered == 0:
        share = 0.0
        sentence = (
            f"None of the {n} items with a human decision has a confidence of {read_at:.2f} "
            "or more: the model would decide none of them."
        )
    else:
        share = covered / n
        agreement = agreed / covered
        low, high = wilson_interval(agreed, covered)
        sentence = (
            f"The model would decide {covered} of the {n} items with a human decision "
            f"({share:.1%}), those of confidence {read_at:.2f} or more, and agreed with the "
            f"inspectors on {agreed} of them: {agreement:.3f} (95% interval {low:.3f} to "
            f"{high:.3f})."
        )
        if too_few:
            sentence += f" That is under {min_items} items: too few to rely on."
    if not exact and n:
        sentence += (
            f" Read at {read_at:.2f}: confidence is counted in bins 0.01 wide, so items from "
            f"{read_at:.2f} up to {threshold:g} count as decided here."
        )
    return ThresholdFigures(
        threshold=threshold,
        read_at=read_at,
        exact=exact,
        n=n,
        covered=covered,
        share=share,
        agreed=agreed,
        agreement=agreement,
        low=low,
        high=high,
        too_few=too_few,
        sentence=sentence,
    )


def threshold_figures(
    *, bins: ConfidenceBins, threshold: float, min_items: int
) -> ThresholdFigures:
    """Return the coverage and agreement at a threshold in [0, 1], read off left-closed bins."""
    if bins.closed != "left":
        raise ValueError("coverage needs bins closed on the left, as coverage_bins makes them")
    if not (math.isfinite(threshold) and 0.0 <= threshold <= 1.0):
        raise ValueError(f"a threshold lies in [0, 1], got {threshold!r}")
    index, exact = _bin_index(bins, threshold)
    return _figures_at(bins, threshold, index, exact, min_items)


def threshold_suggestions(
    *, bins: ConfidenceBins, targets: Sequence[float], min_items: int
) -> list[ThresholdSuggestion]:
    """Return, per agreement level, the lowest threshold whose lower bound reaches it.

    Over thresholds on the bin edges, among those with at least min_items items at or
    above them; the lowest such threshold decides the most items.
    """
    covered = _from(bins.count)
    agreed = _from(bins.correct)
    lows = np.array(
        [
            wilson_interval(int(a), int(c))[0] if c else 0.0
            for a, c in zip(agreed, covered, strict=True)
        ]
    )
    suggestions = []
    for target in sorted(set(targets)):
        ready = np.flatnonzero((covered >= min_items) & (lows >= target - 1e-12))
        if ready.size == 0:
            suggestions.append(
                ThresholdSuggestion(
                    target=target,
                    figures=None,
                    sentence=(
                        f"No threshold keeps agreement's 95% lower bound at or above "
                        f"{target:.2f} on {min_items} items or more in this range."
                    ),
                )
            )
            continue
        index = int(ready[0])
        figures = _figures_at(bins, float(bins.edges[index]), index, True, min_items)
        suggestions.append(
            ThresholdSuggestion(
                target=target,
                figures=figures,
                sentence=(
                    f"From {figures.threshold:.2f} on, agreement's 95% lower bound is "
                    f"{figures.low:.3f}, at or above {target:.2f}, on "
                    f"{figures.covered} items ({figures.share:.1%})."
                ),
            )
        )
    return suggestions


def deferral_summary(
    *,
    bins: ConfidenceBins,
    threshold: float,
    targets: Sequence[float] = DEFERRAL_TARGETS,
    min_items: int,
    audit: bool = False,
) -> DeferralReport:
    """Return the figures of the threshold in force and the thresholds suggested."""
    return DeferralReport(
        current=threshold_figures(bins=bins, threshold=threshold, min_items=min_items),
        suggestions=threshold_suggestions(bins=bins, targets=targets, min_items=min_items),
        min_items=min_items,
        method=SUGGESTION_METHOD.format(min_items=min_items),
        caveat=AUDIT_CAVEAT if audit else "",
    )
