"""Count tables one period (a day, or several added up) of shadow scoring reduces to.

Plain numpy: no Django import. A ``PeriodCounts`` holds every count the six reports
need; counts of two periods add up, so the report of ten daily rollups equals the
report of the ten days' raw rows. Labels are indices into the queue's label order
(not the model's probability order) so that versions of one queue compare directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.stats.calibration import (
    COVERAGE_BINS,
    RELIABILITY_BINS,
    ConfidenceBins,
    coverage_bins,
    reliability_bins,
)
from analytics.stats.feature_extremes import (
    FeatureExtremes,
    feature_extremes_add,
    feature_extremes_from_json,
    feature_extremes_to_json,
)
from analytics.stats.paired import Differences, paired_from_json, paired_to_json

# Fixed log-spaced bins, 20 per decade (each bin's upper edge is 12% above its lower one),
# so latency and lag histograms of any two days add up and percentiles read off them
# are within one bin of the exact ones.
BINS_PER_DECADE = 20
LATENCY_EDGES_MS = np.logspace(-3, 5, 8 * BINS_PER_DECADE + 1)
LAG_EDGES_SECONDS = np.logspace(-3, 6, 9 * BINS_PER_DECADE + 1)
REASON_KIND_LENGTH = 60

Matrix = npt.NDArray[np.int64]

# Bumped whenever PeriodCounts gains a count: a rollup stored in an older format is
# recomputed by the periodic task and, until then, aggregated at request time.
# 3: paired differences of panel items; 4: feature counts on range-aware bins
# (ReferenceProfile format 2), feature_extremes; 5: a day's audit-sample rollup is computed
# with its every-item one (analytics.samples), so a day rolled up in format 5 without an
# audit rollup had no audit items.
ROLLUP_FORMAT = 5


def log_histogram(values: npt.ArrayLike, edges: np.ndarray) -> Matrix:
    """Return counts on log-spaced edges; values off the grid go to the first or last bin."""
    array = np.asarray(values, dtype=np.float64)
    index = np.clip(np.searchsorted(edges, array, side="right") - 1, 0, edges.size - 2)
    return np.bincount(index, minlength=edges.size - 1).astype(np.int64)


def percentile_from_histogram(counts: npt.ArrayLike, edges: np.ndarray, q: float) -> float:
    """Return the q-th percentile (0-100) of a log-binned histogram.

    Interpolation is linear in log space inside the bin that holds the target rank
    (values are assumed spread geometrically within a bin), so the figure is within
    one bin (a factor 10 ** (1/20) = 1.122) of the exact percentile. nan if empty.
    """
    table = np.asarray(counts, dtype=np.float64)
    total = float(table.sum())
    if total == 0:
        return math.nan
    rank = q / 100.0 * total
    cumulative = np.cumsum(table)
    index = int(np.searchsorted(cumulative, rank, side="left"))
    index = min(index, table.size - 1)
    below = cumulative[index] - table[index]
    share = (rank - below) / table[index] if table[index] else 0.0
    low, high = math.log(edges[index]), math.log(edges[index + 1])
    return math.exp(low + min(max(share, 0.0), 1.0) * (high - low))


def reason_kind(reason: str) -> str:
    """Return the kind of an error reason: its text before the first ':' (ids and details vary)."""
    return reason.split(":", 1)[0].strip()[:REASON_KIND_LENGTH] or "unknown"


def _add_dicts(first: dict[Any, Any], second: dict[Any, Any]) -> dict[Any, Any]:
    merged = dict(first)
    for key, value in second.items():
        merged[key] = merged[key] + value if key in merged else value
    return merged


@dataclass(frozen=True)
class FleissSums:
    """Fleiss' kappa sufficient statistics of items rated by the same number of raters."""

    items: int
    category_totals: npt.NDArray[np.int64]
    squares: int

    def __add__(self, other: FleissSums) -> FleissSums:
        return FleissSums(
            items=self.items + other.items,
            category_totals=self.category_totals + other.category_totals,
            squares=self.squares + other.squares,
        )


def fleiss_sums(table: npt.ArrayLike) -> FleissSums:
    """Return the sums of an items x categories rater-count table Fleiss' kappa needs."""
    counts = np.asarray(table, dtype=np.int64).reshape(-1, np.shape(table)[-1])
    return FleissSums(
        items=int(counts.shape[0]),
        category_totals=counts.sum(axis=0),
        squares=int(np.sum(counts * counts)),
    )


def fleiss_kappa_from_sums(sums: FleissSums, raters: int) -> float:
    """Return Fleiss' kappa (Fleiss 1971) from summed counts, as agreement.fleiss_kappa does.

    Mean item agreement is (sum of n_ij^2 - N m) / (N m (m - 1)), so the per-item table
    is not needed: its sum of squares and category totals suffice.
    """
    if sums.items == 0 or raters < 2:
        return math.nan
    ratings = sums.items * raters
    shares = sums.category_totals / ratings
    expected = float(np.sum(shares**2))
    if np.count_nonzero(shares) == 1:
        return 1.0
    observed = (sums.squares - ratings) / (ratings * (raters - 1.0))
    return (observed - expected) / (1.0 - expected)


@dataclass(frozen=True, eq=False)
class PeriodCounts:
    """Every count of one (queue, model version, period); add two to cover both periods.

    Confusion tables have the human label in rows and the model label in columns.
    ``confusion_each`` counts every judgment of an item the model scored (an item
    judged twice counts twice); ``confusion_consensus`` counts each item once, with the
    human decision where the item's judgments are complete and all agree. Confidence
    bins count items with a consensus decision, "correct" meaning the model agreed.
    ``items``, ``judgments`` and ``multi_judged`` (items judged at least twice) are the
    queue's own counts for the period, the same for every model version.
    ``pairs`` is first judgment x second judgment x model label on items judged at
    least twice and scored; ``variants`` is this model's label x the other's on items
    both scored (keyed by the other version's key). ``paired`` holds the paired difference
    (analytics.stats.paired) of every scored item whose panel of two or more inspectors is
    complete, in the order the items arrived; adding two periods appends the second's, so
    periods are added in day order.
    """

    n_classes: int
    items: int = 0
    scored_ok: int = 0
    scored_error: int = 0
    unscored: int = 0
    undecided: int = 0
    judgments: int = 0
    multi_judged: int = 0
    confusion_each: Matrix = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    confusion_consensus: Matrix = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    inspectors: dict[int, Matrix] = field(default_factory=dict)
    label_counts: Matrix = field(default_factory=lambda: np.zeros(0, np.int64))
    reliability: ConfidenceBins | None = None
    coverage: ConfidenceBins | None = None
    latency: dict[str, Matrix] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    lag: Matrix = field(default_factory=lambda: np.zeros(LAG_EDGES_SECONDS.size - 1, np.int64))
    pairs: Matrix = field(default_factory=lambda: np.zeros((0, 0, 0), np.int64))
    fleiss: dict[int, FleissSums] = field(default_factory=dict)
    features: list[Matrix] | None = None
    # The drift report's out-of-range sentences: how far values went (see feature_extremes).
    feature_extremes: FeatureExtremes | None = None
    variants: dict[str, Matrix] = field(default_factory=dict)
    paired: Differences = field(default_factory=lambda: np.zeros(0, np.float64))

    def __post_init__(self) -> None:
        k = self.n_classes
        if self.confusion_each.size == 0:
            object.__setattr__(self, "confusion_each", np.zeros((k, k), np.int64))
        if self.confusion_consensus.size == 0:
            object.__setattr__(self, "confusion_consensus", np.zeros((k, k), np.int64))
        if self.label_counts.size == 0:
            object.__setattr__(self, "label_counts", np.zeros(k, np.int64))
        if self.pairs.size == 0:
            object.__setattr__(self, "pairs", np.zeros((k, k, k), np.int64))
        if self.reliability is None:
            object.__setattr__(self, "reliability", reliability_bins([], [], RELIABILITY_BINS))
        if self.coverage is None:
            object.__setattr__(self, "coverage", coverage_bins([], [], COVERAGE_BINS))

    def __add__(self, other: PeriodCounts) -> PeriodCounts:
        """Return the counts of both periods together."""
        if self.n_classes != other.n_classes:
            raise ValueError("only counts over the same labels add up")
        assert self.reliability is not None and other.reliability is not None
        assert self.coverage is not None and other.coverage is not None
        features: list[Matrix] | None
        if self.features is None:
            features = other.features
        elif other.features is None:
            features = self.features
        else:
            features = [a + b for a, b in zip(self.features, other.features, strict=True)]
        return PeriodCounts(
            n_classes=self.n_classes,
            items=self.items + other.items,
            scored_ok=self.scored_ok + other.scored_ok,
            scored_error=self.scored_error + other.scored_error,
            unscored=self.unscored + other.unscored,
            undecided=self.undecided + other.undecided,
            judgments=self.judgments + other.judgments,
            multi_judged=self.multi_judged + other.multi_judged,
            confusion_each=self.confusion_each + other.confusion_each,
            confusion_consensus=self.confusion_consensus + other.confusion_consensus,
            inspectors=_add_dicts(self.inspectors, other.inspectors),
            label_counts=self.label_counts + other.label_counts,
            reliability=self.reliability + other.reliability,
            coverage=self.coverage + other.coverage,
            latency=_add_dicts(self.latency, other.latency),
            errors=_add_dicts(self.errors, other.errors),
            lag=self.lag + other.lag,
            pairs=self.pairs + other.pairs,
            fleiss=_add_dicts(self.fleiss, other.fleiss),
            features=features,
            feature_extremes=feature_extremes_add(self.feature_extremes, other.feature_extremes),
            variants=_add_dicts(self.variants, other.variants),
            paired=np.concatenate((self.paired, other.paired)),
        )

    def with_features(self, features: list[Matrix] | None) -> PeriodCounts:
        """Return a copy holding these per-feature fine-bin counts (extremes go with them)."""
        return replace(
            self, features=features, feature_extremes=self.feature_extremes if features else None
        )


def period_counts_sum(periods: list[PeriodCounts], n_classes: int) -> PeriodCounts:
    """Return the counts of all periods together, paired differences in the periods' order."""
    # The sequences are joined once at the end: appending period by period would copy a
    # year of panel items once per day.
    empty = np.zeros(0, np.float64)
    total = PeriodCounts(n_classes=n_classes)
    for period in periods:
        total = total + replace(period, paired=empty)
    return replace(total, paired=np.concatenate([empty, *(p.paired for p in periods)]))


def _bins_json(bins: ConfidenceBins) -> dict[str, list[float]]:
    return {
        "count": bins.count.tolist(),
        "correct": bins.correct.tolist(),
        "confidence_sum": bins.confidence_sum.tolist(),
    }


def _bins_from_json(data: dict[str, list[float]], template: ConfidenceBins) -> ConfidenceBins:
    return ConfidenceBins(
        edges=template.edges,
        count=np.asarray(data["count"], np.int64),
        correct=np.asarray(data["correct"], np.int64),
        confidence_sum=np.asarray(data["confidence_sum"], np.float64),
        closed=template.closed,
    )


def period_counts_to_json(counts: PeriodCounts) -> dict[str, Any]:
    """Return the counts as JSON-ready lists and dicts, as a rollup row stores them."""
    assert counts.reliability is not None and counts.coverage is not None
    nonzero = np.argwhere(counts.pairs)
    return {
        "format": ROLLUP_FORMAT,
        "n_classes": counts.n_classes,
        "items": counts.items,
        "scored_ok": counts.scored_ok,
        "scored_error": counts.scored_error,
        "unscored": counts.unscored,
        "undecided": counts.undecided,
        "judgments": counts.judgments,
        "multi_judged": counts.multi_judged,
        "confusion_each": counts.confusion_each.tolist(),
        "confusion_consensus": counts.confusion_consensus.tolist(),
        "inspectors": {str(k): v.tolist() for k, v in counts.inspectors.items()},
        "label_counts": counts.label_counts.tolist(),
        "reliability": _bins_json(counts.reliability),
        "coverage": _bins_json(counts.coverage),
        "latency": {k: v.tolist() for k, v in counts.latency.items()},
        "errors": counts.errors,
        "lag": counts.lag.tolist(),
        # Sparse: k^3 cells, few of them filled.
        "pairs": [[*map(int, cell), int(counts.pairs[tuple(cell)])] for cell in nonzero],
        "fleiss": {
            str(m): [s.items, s.category_totals.tolist(), s.squares]
            for m, s in counts.fleiss.items()
        },
        "features": None if counts.features is None else [f.tolist() for f in counts.features],
        "feature_extremes": feature_extremes_to_json(counts.feature_extremes),
        "variants": {k: v.tolist() for k, v in counts.variants.items()},
        # One character per panel item: about 10 kB a day at 10,000 panel items.
        "paired": paired_to_json(counts.paired),
    }


def rollup_is_current(data: dict[str, Any]) -> bool:
    """Return whether a rollup row's counts are in the format this code writes."""
    return data.get("format") == ROLLUP_FORMAT


def period_counts_from_json(data: dict[str, Any]) -> PeriodCounts:
    """Return the counts a rollup row stored (in the current format)."""
    k = int(data["n_classes"])
    pairs = np.zeros((k, k, k), np.int64)
    for first, second, model, count in data["pairs"]:
        pairs[first, second, model] = count
    empty = PeriodCounts(n_classes=k)
    assert empty.reliability is not None and empty.coverage is not None
    return PeriodCounts(
        n_classes=k,
        items=data["items"],
        scored_ok=data["scored_ok"],
        scored_error=data["scored_error"],
        unscored=data["unscored"],
        undecided=data["undecided"],
        judgments=data["judgments"],
        multi_judged=data["multi_judged"],
        confusion_each=np.asarray(data["confusion_each"], np.int64).reshape(k, k),
        confusion_consensus=np.asarray(data["confusion_consensus"], np.int64).reshape(k, k),
        inspectors={int(i): np.asarray(v, np.int64) for i, v in data["inspectors"].items()},
        label_counts=np.asarray(data["label_counts"], np.int64),
        reliability=_bins_from_json(data["reliability"], empty.reliability),
        coverage=_bins_from_json(data["coverage"], empty.coverage),
        latency={b: np.asarray(v, np.int64) for b, v in data["latency"].items()},
        errors=dict(data["errors"]),
        lag=np.asarray(data["lag"], np.int64),
        pairs=pairs,
        fleiss={
            int(m): FleissSums(items=v[0], category_totals=np.asarray(v[1], np.int64), squares=v[2])
            for m, v in data["fleiss"].items()
        },
        features=None
        if data["features"] is None
        else [np.asarray(f, np.int64) for f in data["features"]],
        feature_extremes=feature_extremes_from_json(data["feature_extremes"]),
        variants={
            key: np.asarray(v, np.int64).reshape(k, k) for key, v in data["variants"].items()
        },
        paired=paired_from_json(data["paired"]),
    )
