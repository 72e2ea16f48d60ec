"""Input and prediction drift reports from fine-bin counts (no Django import).

Every feature's level comes from ``analytics.stats.drift_window``: smoothed PSI tested
against its no-drift distribution at the window's size, KS or (few-valued features) a
chi-square that pools sparse bins and turns Monte-Carlo when even those are sparse, on
bins that see values outside the reference's range. So the drifted-feature share counts
only drift beyond noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from analytics.stats.binning import ReferenceBins, merge_bins, point_mass_bins
from analytics.stats.counts import PeriodCounts
from analytics.stats.drift import DriftThresholds
from analytics.stats.drift_days import DAY_METHOD, day_drift_flags
from analytics.stats.drift_window import (
    PSI_NULL_SOURCE,
    PSI_SMOOTHING,
    WindowFeatureDrift,
    window_feature_drift_from_counts,
)
from analytics.summaries.drift_parts import (
    OutOfRange,
    PredictionDrift,
    out_of_range_figures,
    prediction_drift,
)
from analytics.summaries.headlines import HEADLINE_RULE, FigureLight, figure_light

BINNING = (
    "PSI on 10 quantile bins of the model's reference data, KS, chi-square and "
    "Jensen-Shannon on 100 fine ones; both grids also have a bin below the reference minimum, "
    "one above its maximum, and a bin of its own for every value holding 1% or more of the "
    "reference; a feature with at most 20 distinct reference values gets a bin per value"
)
PSI_METHOD = f"PSI smoothed: {PSI_SMOOTHING}; no-drift critical value: {PSI_NULL_SOURCE}"


def level_rule(thresholds: DriftThresholds) -> str:
    """Return the rule that decides each feature's level, in words."""
    return (
        f"major when smoothed PSI passes both {thresholds.psi_major:g} and its no-drift critical "
        f"value at this window's size; moderate when it passes {thresholds.psi_moderate:g} and "
        "the critical value, or when the feature's test (Kolmogorov-Smirnov on the fine bins; "
        "chi-square for few-valued features, Monte-Carlo when an expected count is under 5), "
        f"{thresholds.correction}-corrected over features, is below a quarter of "
        f"{thresholds.ks_alpha:g} with D at least {thresholds.ks_min_statistic:g}, or when "
        "the binned KS D is too coarse to rule drift out"
    )


@dataclass(frozen=True)
class FeatureDriftFigures:
    """One feature's window drift: what each figure is is in the report's method texts."""

    index: int
    categorical: bool
    psi: float
    psi_expected: float
    psi_critical: float
    ks_statistic: float
    ks_error_bound: float
    ks_p_value: float
    ks_p_adjusted: float
    test_p_value: float
    test_p_adjusted: float
    test_method: str
    js_distance: float
    current_below: float
    current_above: float
    level: str


@dataclass(frozen=True)
class FeatureDistributions:
    """One feature's reference and current shares on the fine bins, for an overlaid chart."""

    index: int
    edges: list[float]  # interior edges; the outer ones are -inf and +inf
    point_mass: list[bool]  # per bin, whether it holds a single value
    reference_share: list[float]
    current_share: list[float]


@dataclass(frozen=True)
class DayDrift:
    """Share of features drifted beyond noise and the largest smoothed PSI of one day."""

    day: date
    n: int
    drifted_share: float
    max_psi: float


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift, prediction drift and drift per day against the reference data."""

    available: bool
    reason: str
    binning: str
    psi_method: str
    level_rule: str
    day_method: str
    correction: str
    thresholds: DriftThresholds
    reference_rows: int
    current_rows: int
    # False for a reference profile made before ranges were kept: out-of-range shares unknown.
    range_known: bool
    features: list[FeatureDriftFigures]
    drifted_count: int
    drifted_share: float
    max_psi: float
    drifted_light: FigureLight
    out_of_range: list[OutOfRange]
    prediction: PredictionDrift | None
    days: list[DayDrift]
    top: list[FeatureDistributions]
    first_day: date | None
    last_day: date | None


def _unavailable(
    reason: str,
    thresholds: DriftThresholds,
    reference_rows: int,
    days: Sequence[tuple[date, PeriodCounts]],
) -> DriftReport:
    return DriftReport(
        available=False,
        reason=reason,
        binning=BINNING,
        psi_method=PSI_METHOD,
        level_rule=level_rule(thresholds),
        day_method=DAY_METHOD,
        correction=thresholds.correction,
        thresholds=thresholds,
        reference_rows=reference_rows,
        current_rows=0,
        range_known=False,
        features=[],
        drifted_count=0,
        drifted_share=math.nan,
        max_psi=math.nan,
        drifted_light=figure_light(
            HEADLINE_RULE["drifted_share"], low=math.nan, high=math.nan, n=0, undefined=reason
        ),
        out_of_range=[],
        prediction=None,
        days=[],
        top=[],
        first_day=days[0][0] if days else None,
        last_day=days[-1][0] if days else None,
    )


def _padded(rows: Sequence[np.ndarray], width: int) -> np.ndarray:
    matrix = np.zeros((len(rows), width), np.float64)
    for j, row in enumerate(rows):
        matrix[j, : row.size] = row
    return matrix


def _coarse(fine: Sequence[np.ndarray], bins: Sequence[ReferenceBins]) -> list[np.ndarray]:
    return [merge_bins(c, b.fine_edges, b.coarse_edges) for c, b in zip(fine, bins, strict=True)]


def _days_drift(
    reference: list[np.ndarray],
    bins: Sequence[ReferenceBins],
    days: Sequence[tuple[date, PeriodCounts]],
    thresholds: DriftThresholds,
) -> list[DayDrift]:
    """Return each day's drifted-feature share and largest smoothed PSI; days without rows
    are left out. Features with fewer bins than others are padded with bins empty on both
    sides, which smoothed PSI and the CDFs ignore."""
    fine_width = max(b.fine_edges.size - 1 for b in bins)
    coarse_width = max(b.coarse_edges.size - 1 for b in bins)
    reference_coarse = _padded(_coarse(reference, bins), coarse_width)
    reference_fine = _padded(reference, fine_width)
    categorical = np.array([b.categorical for b in bins])
    per_day = []
    for day, counts in days:
        if counts.features is None or counts.features[0].sum() == 0:
            continue
        drifted, psi = day_drift_flags(
            reference_coarse=reference_coarse,
            current_coarse=_padded(_coarse(counts.features, bins), coarse_width),
            reference_fine=reference_fine,
            current_fine=_padded(counts.features, fine_width),
            categorical=categorical,
            thresholds=thresholds,
        )
        per_day.append(
            DayDrift(
                day=day,
                n=int(counts.features[0].sum()),
                drifted_share=float(drifted.mean()),
                max_psi=float(np.nanmax(psi)),
            )
        )
    return per_day


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [math.nan] * counts.size


def _figures(window: WindowFeatureDrift, range_known: bool) -> FeatureDriftFigures:
    return FeatureDriftFigures(
        index=window.index,
        categorical=window.categorical,
        psi=window.psi,
        psi_expected=window.psi_expected,
        psi_critical=window.psi_critical,
        ks_statistic=window.ks_statistic,
        ks_error_bound=window.ks_error_bound,
        ks_p_value=window.ks_p_value,
        ks_p_adjusted=window.ks_p_adjusted,
        test_p_value=window.test_p_value,
        test_p_adjusted=window.test_p_adjusted,
        test_method=window.test_method,
        js_distance=window.js_distance,
        current_below=window.current_below if range_known else math.nan,
        current_above=window.current_above if range_known else math.nan,
        level=window.level,
    )


SEVERITY = {"major": 2, "moderate": 1, "none": 0}


def drift_summary(
    *,
    reference_counts: Sequence[npt.ArrayLike],
    reference_predictions: npt.ArrayLike,
    bins: Sequence[ReferenceBins],
    total: PeriodCounts,
    days: Sequence[tuple[date, PeriodCounts]],
    labels: Sequence[str],
    thresholds: DriftThresholds,
    top_n: int = 5,
) -> DriftReport:
    """Return the drift report of a period's fine-bin counts against the reference counts."""
    reference = [np.asarray(c, dtype=np.int64) for c in reference_counts]
    reference_rows = int(reference[0].sum()) if reference else 0
    if not reference:
        return _unavailable(
            "this model version has no reference data, so there is nothing to compare with",
            thresholds,
            reference_rows,
            days,
        )
    if total.features is None or int(total.features[0].sum()) == 0:
        return _unavailable(
            "no item in this range has a successful prediction from this version yet",
            thresholds,
            reference_rows,
            days,
        )
    if any(c.size != b.fine_edges.size - 1 for c, b in zip(total.features, bins, strict=True)):
        return _unavailable(
            "the stored counts of this range are on other bins than the reference profile's; "
            "the next rollup run counts them again",
            thresholds,
            reference_rows,
            days,
        )
    current_rows = int(total.features[0].sum())
    range_known = all(math.isfinite(b.minimum) and math.isfinite(b.maximum) for b in bins)
    window = window_feature_drift_from_counts(reference, total.features, bins, thresholds)
    drifted = sum(f.drifted for f in window)
    share = drifted / len(window)
    ranked = sorted(window, key=lambda f: (-SEVERITY[f.level], -f.psi, f.index))[:top_n]
    top = [
        FeatureDistributions(
            index=f.index,
            edges=bins[f.index].fine_edges[1:-1].tolist(),
            point_mass=point_mass_bins(bins[f.index].fine_edges).tolist(),
            reference_share=_shares(reference[f.index]),
            current_share=_shares(total.features[f.index]),
        )
        for f in ranked
    ]
    return DriftReport(
        available=True,
        reason="",
        binning=BINNING,
        psi_method=PSI_METHOD,
        level_rule=level_rule(thresholds),
        day_method=DAY_METHOD,
        correction=thresholds.correction,
        thresholds=thresholds,
        reference_rows=reference_rows,
        current_rows=current_rows,
        range_known=range_known,
        features=[_figures(f, range_known) for f in window],
        drifted_count=drifted,
        drifted_share=share,
        max_psi=max(f.psi for f in window),
        drifted_light=figure_light(
            HEADLINE_RULE["drifted_share"], low=share, high=share, n=current_rows
        ),
        out_of_range=out_of_range_figures(window, bins, total.feature_extremes)
        if range_known
        else [],
        prediction=prediction_drift(reference_predictions, total.label_counts, labels, thresholds),
        days=_days_drift(reference, bins, days, thresholds),
        top=top,
        first_day=days[0][0] if days else None,
        last_day=days[-1][0] if days else None,
    )
