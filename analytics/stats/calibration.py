"""Measure whether a model's confidence means what it says, and what a threshold buys.

Plain numpy: no Django import. As in ``analytics.stats.drift``, every figure comes from
per-bin counts (items, correct items, sum of confidences), which daily rollups
store and add up, so a report from rollups equals the report from raw rows.

Two binnings of [0, 1] into equal-width bins, because two edge rules are needed:

* ``reliability_bins`` (10 bins) follows scikit-learn's ``calibration_curve``
  exactly: edges ``np.linspace(0, 1, n + 1)``, bin index
  ``np.searchsorted(edges[1:-1], confidence)``, so bins are closed on the right,
  (e_i, e_i+1], and the first one also holds 0.
* ``coverage_bins`` (100 bins) are closed on the left, [i/n, (i+1)/n), the last
  one also holding 1, so "confidence >= t" is a union of whole bins for every
  threshold t in 0, 0.01, ..., 0.99, and coverage from rollups is exact there.

A rollup stores both: reliability diagram and ECE come from the first, the
coverage curve and the confidence histogram (100 bins merged to 20) from the second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from analytics.stats.agreement import wilson_interval

RELIABILITY_BINS = 10
COVERAGE_BINS = 100
HISTOGRAM_BINS = 20
GRID_TOLERANCE = 1e-9

Closed = Literal["left", "right"]


def _frozen(values: npt.ArrayLike, dtype: npt.DTypeLike) -> np.ndarray:
    """Return a read-only copy, so a frozen dataclass cannot change under its holder."""
    array: np.ndarray = np.array(values, dtype=dtype)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ConfidenceBins:
    """Per-bin counts a rollup stores: items, correct items and the sum of their confidences."""

    edges: np.ndarray
    count: np.ndarray
    correct: np.ndarray
    confidence_sum: np.ndarray
    closed: Closed

    def __post_init__(self) -> None:
        object.__setattr__(self, "edges", _frozen(self.edges, np.float64))
        object.__setattr__(self, "count", _frozen(self.count, np.int64))
        object.__setattr__(self, "correct", _frozen(self.correct, np.int64))
        object.__setattr__(self, "confidence_sum", _frozen(self.confidence_sum, np.float64))
        n_bins = self.edges.size - 1
        if self.edges.ndim != 1 or n_bins < 1 or np.any(np.diff(self.edges) <= 0):
            raise ValueError("edges must increase strictly and make at least one bin")
        if any(a.shape != (n_bins,) for a in (self.count, self.correct, self.confidence_sum)):
            raise ValueError(f"{n_bins} bins need {n_bins} counts, correct counts and sums")
        if np.any(self.correct < 0) or np.any(self.correct > self.count):
            raise ValueError("need 0 <= correct <= count in every bin")
        if self.closed not in ("left", "right"):
            raise ValueError(f"closed must be 'left' or 'right', got {self.closed!r}")

    @property
    def n(self) -> int:
        """Return the number of items counted."""
        return int(self.count.sum())

    def __add__(self, other: ConfidenceBins) -> ConfidenceBins:
        """Return the counts of both periods together (two days' rollups make the pair's)."""
        if self.closed != other.closed or not np.array_equal(self.edges, other.edges):
            raise ValueError("only counts over the same bins add up")
        return ConfidenceBins(
            edges=self.edges,
            count=self.count + other.count,
            correct=self.correct + other.correct,
            confidence_sum=self.confidence_sum + other.confidence_sum,
            closed=self.closed,
        )


def _scored_items(
    confidence: npt.ArrayLike, correct: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Return confidences in [0, 1] and matching booleans, rejecting anything else."""
    scores = np.asarray(confidence, dtype=np.float64)
    outcomes = np.asarray(correct)
    if scores.ndim != 1 or outcomes.shape != scores.shape:
        raise ValueError(
            f"need one outcome per confidence, got shapes {scores.shape} and {outcomes.shape}"
        )
    if np.any(np.isnan(scores)) or np.any((scores < 0.0) | (scores > 1.0)):
        raise ValueError("confidence must lie in [0, 1]")
    if outcomes.dtype != np.bool_:
        if outcomes.size and not np.all((outcomes == 0) | (outcomes == 1)):
            raise ValueError("outcomes must be booleans or 0/1")
        outcomes = outcomes.astype(np.bool_)
    return scores, outcomes


def _binned(
    scores: np.ndarray, outcomes: np.ndarray, edges: np.ndarray, closed: Closed
) -> ConfidenceBins:
    """Return the per-bin counts of scored items over these edges."""
    n_bins = edges.size - 1
    side: Literal["left", "right"] = "left" if closed == "right" else "right"
    index = np.searchsorted(edges[1:-1], scores, side=side)
    return ConfidenceBins(
        edges=edges,
        count=np.bincount(index, minlength=n_bins),
        correct=np.bincount(index[outcomes], minlength=n_bins),
        confidence_sum=np.bincount(index, weights=scores, minlength=n_bins),
        closed=closed,
    )


def _check_n_bins(n_bins: int) -> None:
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")


def reliability_bins(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = RELIABILITY_BINS
) -> ConfidenceBins:
    """Return per-bin counts on scikit-learn's calibration_curve bins (closed on the right)."""
    _check_n_bins(n_bins)
    scores, outcomes = _scored_items(confidence, correct)
    return _binned(scores, outcomes, np.linspace(0.0, 1.0, n_bins + 1), "right")


def coverage_bins(
    confidence: npt.ArrayLike, agree: npt.ArrayLike, n_bins: int = COVERAGE_BINS
) -> ConfidenceBins:
    """Return per-bin counts on bins [i/n, (i+1)/n), the last one holding 1 as well."""
    _check_n_bins(n_bins)
    scores, outcomes = _scored_items(confidence, agree)
    # i / n is the double nearest each grid point, the same as the literal 0.37 for
    # i = 37, n = 100: thresholds typed by people fall exactly on an edge.
    return _binned(scores, outcomes, np.arange(n_bins + 1) / n_bins, "left")


def merge_confidence_bins(bins: ConfidenceBins, n_bins: int) -> ConfidenceBins:
    """Return the counts on n_bins bins, each made of consecutive bins of the finer grid."""
    _check_n_bins(n_bins)
    fine = bins.count.size
    if fine % n_bins:
        raise ValueError(f"{fine} bins do not group into {n_bins}")
    group = fine // n_bins
    return ConfidenceBins(
        edges=bins.edges[::group],
        count=bins.count.reshape(n_bins, group).sum(axis=1),
        correct=bins.correct.reshape(n_bins, group).sum(axis=1),
        confidence_sum=bins.confidence_sum.reshape(n_bins, group).sum(axis=1),
        closed=bins.closed,
    )


# --- reliability ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Reliability:
    """A reliability diagram: per bin, how many items, how confident, how often right."""

    edges: np.ndarray
    count: np.ndarray
    mean_confidence: np.ndarray
    accuracy: np.ndarray
    expected_calibration_error: float


def expected_calibration_error_from_counts(bins: ConfidenceBins) -> float:
    """Return ECE = sum over bins of n_b / N * |accuracy_b - mean confidence_b|.

    Naeini, Cooper & Hauskrecht (2015), "Obtaining well calibrated probabilities
    using Bayesian binning", AAAI; Guo et al. (2017), "On calibration of modern
    neural networks", ICML. n_b * |acc_b - conf_b| is |correct_b - confidence sum_b|,
    so ECE needs only the stored sums. In [0, 1]; nan with no items.
    """
    if bins.n == 0:
        return math.nan
    return float(np.sum(np.abs(bins.correct - bins.confidence_sum)) / bins.n)


def reliability_from_counts(bins: ConfidenceBins) -> Reliability:
    """Return the reliability diagram of per-bin counts; empty bins have nan figures."""
    filled = bins.count > 0
    count = np.where(filled, bins.count, 1)
    return Reliability(
        edges=bins.edges,
        count=bins.count,
        mean_confidence=np.where(filled, bins.confidence_sum / count, np.nan),
        accuracy=np.where(filled, bins.correct / count, np.nan),
        expected_calibration_error=expected_calibration_error_from_counts(bins),
    )


def reliability(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = RELIABILITY_BINS
) -> Reliability:
    """Return the reliability diagram on equal-width bins, binned as scikit-learn bins."""
    return reliability_from_counts(reliability_bins(confidence, correct, n_bins))


def expected_calibration_error(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = RELIABILITY_BINS
) -> float:
    """Return the expected calibration error on n_bins equal-width bins."""
    return expected_calibration_error_from_counts(reliability_bins(confidence, correct, n_bins))


# --- confidence histogram ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ConfidenceHistogram:
    """How many items the model and the inspector agreed and disagreed on, by confidence."""

    edges: np.ndarray
    agreed: np.ndarray
    disagreed: np.ndarray


def confidence_histogram_from_counts(bins: ConfidenceBins) -> ConfidenceHistogram:
    """Return the agreed and disagreed counts of each bin."""
    return ConfidenceHistogram(
        edges=bins.edges, agreed=bins.correct, disagreed=bins.count - bins.correct
    )


def confidence_histogram(
    confidence: npt.ArrayLike, agree: npt.ArrayLike, n_bins: int = HISTOGRAM_BINS
) -> ConfidenceHistogram:
    """Return counts split by agreement on bins [i/n, (i+1)/n), as np.histogram bins them."""
    return confidence_histogram_from_counts(coverage_bins(confidence, agree, n_bins))


# --- coverage ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CoverageCurve:
    """Per threshold t: items with confidence >= t, their share, and agreement on them."""

    thresholds: np.ndarray
    covered: np.ndarray
    coverage: np.ndarray
    agreed: np.ndarray
    agreement_rate: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _coverage_curve(
    thresholds: np.ndarray, covered: np.ndarray, agreed: np.ndarray, n: int
) -> CoverageCurve:
    """Return the curve from the covered and agreed counts at each threshold."""
    # Wilson (1927) via analytics.stats.agreement: it keeps its coverage near a rate of 1,
    # where high-confidence agreement lives.
    intervals = np.array(
        [wilson_interval(int(a), int(c)) for a, c in zip(agreed, covered, strict=True)]
    ).reshape(-1, 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = covered / n if n else np.full(covered.shape, np.nan)
        rate = np.where(covered > 0, agreed / np.maximum(covered, 1), np.nan)
    return CoverageCurve(
        thresholds=thresholds,
        covered=covered,
        coverage=coverage,
        agreed=agreed,
        agreement_rate=rate,
        low=intervals[:, 0],
        high=intervals[:, 1],
    )


def _thresholds(thresholds: npt.ArrayLike) -> np.ndarray:
    array = np.asarray(thresholds, dtype=np.float64)
    if array.ndim != 1 or not np.all(np.isfinite(array)):
        raise ValueError("thresholds must be a 1-D array of finite numbers")
    return array


def coverage_curve(
    confidence: npt.ArrayLike, agree: npt.ArrayLike, thresholds: npt.ArrayLike
) -> CoverageCurve:
    """Return, per threshold t, the share of items with confidence >= t and agreement on them.

    The trade-off of selective prediction (Geifman & El-Yaniv 2017, "Selective
    classification for deep neural networks", NeurIPS): act on the model's answer
    only above t. Agreement rates carry a 95% Wilson interval.
    """
    scores, outcomes = _scored_items(confidence, agree)
    cuts = _thresholds(thresholds)
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    agreed_below = np.concatenate(([0], np.cumsum(outcomes[order], dtype=np.int64)))
    first_covered = np.searchsorted(ordered, cuts, side="left")
    covered = (scores.size - first_covered).astype(np.int64)
    agreed = agreed_below[-1] - agreed_below[first_covered]
    return _coverage_curve(cuts, covered, agreed, scores.size)


def coverage_curve_from_counts(bins: ConfidenceBins, thresholds: npt.ArrayLike) -> CoverageCurve:
    """Return the coverage curve from left-closed bins at thresholds on their edges.

    "confidence >= t" is then the union of the bins from t upwards, so the curve equals
    ``coverage_curve`` on the raw rows. A threshold within 1e-9 of an edge is read
    as that edge. The top edge (1.0) is refused like any off-grid threshold: the last
    bin holds [0.99, 1], so counts cannot tell confidence 1.0 from 0.995.
    """
    if bins.closed != "left":
        raise ValueError("coverage needs bins closed on the left, as coverage_bins makes them")
    cuts = _thresholds(thresholds)
    starts = bins.edges[:-1]
    above = np.clip(np.searchsorted(starts, cuts), 0, starts.size - 1)
    below = np.clip(above - 1, 0, starts.size - 1)
    nearest = np.where(np.abs(starts[below] - cuts) < np.abs(starts[above] - cuts), below, above)
    off_grid = np.abs(starts[nearest] - cuts) > GRID_TOLERANCE
    if np.any(off_grid):
        raise ValueError(f"threshold {cuts[np.argmax(off_grid)]} does not start a bin")
    covered_from = np.cumsum(bins.count[::-1])[::-1]
    agreed_from = np.cumsum(bins.correct[::-1])[::-1]
    return _coverage_curve(cuts, covered_from[nearest], agreed_from[nearest], bins.n)
