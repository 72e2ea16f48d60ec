"""Input and prediction drift reports from fine-bin counts (no Django import)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from analytics.stats.binning import ReferenceBins, merge_bins
from analytics.stats.counts import PeriodCounts
from analytics.stats.drift import (
    DriftThresholds,
    adjust_p_values,
    chi_square_from_counts,
    feature_drift_from_counts,
    kolmogorov_limit_p_values,
    ks_binned_error_bound,
    psi_from_counts,
    psi_rows,
)

BINNING = (
    "PSI on 10 quantile bins of the model's reference data (outer bins open-ended); KS and "
    "Jensen-Shannon on 100 fine reference-quantile bins"
)
KS_METHOD = (
    "two-sample Kolmogorov-Smirnov D read from the binned CDFs at the 100 fine edges: "
    "D_binned <= exact D <= D_binned + ks_error_bound (about 0.01); p-value from the "
    "Kolmogorov distribution at the effective size n*m/(n+m). Per day the same rule applies, "
    "with p-values from the Kolmogorov limit distribution and the correction made over "
    "that day's features"
)


@dataclass(frozen=True)
class FeatureDriftFigures:
    """One feature's drift figures and how far its KS D may be from the exact one."""

    index: int
    psi: float
    ks_statistic: float
    ks_p_value: float
    ks_p_adjusted: float
    ks_error_bound: float
    js_distance: float
    level: str


@dataclass(frozen=True)
class FeatureDistributions:
    """One feature's reference and current shares on the fine bins, for an overlaid chart."""

    index: int
    edges: list[float]
    reference_share: list[float]
    current_share: list[float]


@dataclass(frozen=True)
class PredictionDrift:
    """Predicted label shares now versus on the reference data, PSI and chi-square."""

    labels: list[str]
    reference_counts: list[int]
    current_counts: list[int]
    psi: float
    chi_square: float
    p_value: float
    dof: int


@dataclass(frozen=True)
class DayDrift:
    """Share of drifted features and the largest PSI on one day's items."""

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
    ks_method: str
    correction: str
    thresholds: DriftThresholds
    reference_rows: int
    current_rows: int
    features: list[FeatureDriftFigures]
    drifted_share: float
    prediction: PredictionDrift | None
    days: list[DayDrift]
    top: list[FeatureDistributions]


def _unavailable(reason: str, thresholds: DriftThresholds, reference_rows: int) -> DriftReport:
    return DriftReport(
        available=False,
        reason=reason,
        binning=BINNING,
        ks_method=KS_METHOD,
        correction=thresholds.correction,
        thresholds=thresholds,
        reference_rows=reference_rows,
        current_rows=0,
        features=[],
        drifted_share=math.nan,
        prediction=None,
        days=[],
        top=[],
    )


@dataclass(frozen=True, eq=False)
class _DailyPlan:
    """What every day's drift levels share, worked out once per report.

    Features can have fewer bins than others (ties in the reference drop edges), so
    the per-feature counts are padded with empty bins: an empty bin on both sides adds
    nothing to PSI (both shares are raised to the same epsilon) nor to a CDF gap.
    """

    slots: np.ndarray  # flat coarse slot of every (feature, fine bin), padded bins included
    fine_width: int
    coarse_width: int
    reference_coarse: np.ndarray  # features x coarse bins
    reference_cdf: np.ndarray  # features x interior fine edges
    reference_rows: float


def _padded(rows: Sequence[np.ndarray], width: int) -> np.ndarray:
    matrix = np.zeros((len(rows), width), np.float64)
    for j, row in enumerate(rows):
        matrix[j, : row.size] = row
    return matrix


def _daily_plan(reference: Sequence[np.ndarray], bins: Sequence[ReferenceBins]) -> _DailyPlan:
    fine_width = max(b.fine_edges.size - 1 for b in bins)
    coarse_width = max(b.coarse_edges.size - 1 for b in bins)
    slots = np.zeros((len(bins), fine_width), np.int64)
    for j, b in enumerate(bins):
        starts = np.searchsorted(b.fine_edges, b.coarse_edges)[:-1]
        own = np.searchsorted(starts, np.arange(b.fine_edges.size - 1), side="right") - 1
        slots[j, : own.size] = own
        slots[j, own.size :] = own[-1]  # padded bins are empty: any slot of the row will do
    slots += np.arange(len(bins))[:, None] * coarse_width
    reference_coarse = _padded(
        [merge_bins(r, b.fine_edges, b.coarse_edges) for r, b in zip(reference, bins, strict=True)],
        coarse_width,
    )
    fine = _padded(list(reference), fine_width)
    return _DailyPlan(
        slots=slots.ravel(),
        fine_width=fine_width,
        coarse_width=coarse_width,
        reference_coarse=reference_coarse,
        reference_cdf=np.cumsum(fine, axis=1)[:, :-1] / fine.sum(axis=1, keepdims=True),
        reference_rows=float(fine[0].sum()),
    )


def _day_levels(
    plan: _DailyPlan, current: Sequence[np.ndarray], thresholds: DriftThresholds
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per feature, whether it drifted on one day, and its PSI.

    The rule of ``drift_level`` (a PSI line, or a KS D past its line with a corrected
    p-value below alpha), with p-values from the Kolmogorov limit distribution: exact
    ones for every feature of every day would cost most of the report's time budget.
    Without the p-values, a day of a few hundred items flagged most features on noise.
    """
    fine = _padded(list(current), plan.fine_width)
    features = fine.shape[0]
    coarse = np.bincount(
        plan.slots, weights=fine.ravel(), minlength=features * plan.coarse_width
    ).reshape(features, plan.coarse_width)
    psi = psi_rows(plan.reference_coarse, coarse)
    cdf = np.cumsum(fine, axis=1)[:, :-1] / fine.sum(axis=1, keepdims=True)
    statistic = np.abs(plan.reference_cdf - cdf).max(axis=1, initial=0.0)
    p_values = kolmogorov_limit_p_values(statistic, plan.reference_rows, fine.sum(axis=1))
    adjusted = adjust_p_values(p_values, thresholds.correction)
    ks_flags = (adjusted < thresholds.ks_alpha) & (statistic >= thresholds.ks_min_statistic)
    drifted = (psi >= thresholds.psi_moderate) | ks_flags
    return drifted, psi


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [math.nan] * counts.size


def _days_drift(
    reference: list[np.ndarray],
    bins: Sequence[ReferenceBins],
    days: Sequence[tuple[date, PeriodCounts]],
    thresholds: DriftThresholds,
) -> list[DayDrift]:
    """Return each day's drifted-feature share and largest PSI, days without rows left out."""
    per_day = []
    plan = _daily_plan(reference, bins)
    for day, counts in days:
        if counts.features is None or counts.features[0].sum() == 0:
            continue
        drifted, psi = _day_levels(plan, counts.features, thresholds)
        per_day.append(
            DayDrift(
                day=day,
                n=int(counts.features[0].sum()),
                drifted_share=float(drifted.mean()),
                max_psi=float(psi.max()),
            )
        )
    return per_day


def _prediction_drift(
    reference_predictions: npt.ArrayLike, label_counts: np.ndarray, labels: Sequence[str]
) -> PredictionDrift | None:
    """Return the predicted-label drift, None when either side has no predictions."""
    predicted = np.asarray(reference_predictions, dtype=np.int64)
    if predicted.sum() == 0 or label_counts.sum() == 0:
        return None
    chi2, p_value, dof = chi_square_from_counts(predicted, label_counts)
    return PredictionDrift(
        labels=list(labels),
        reference_counts=predicted.tolist(),
        current_counts=label_counts.tolist(),
        psi=psi_from_counts(predicted, label_counts),
        chi_square=chi2,
        p_value=p_value,
        dof=dof,
    )


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
    if total.features is None or not reference:
        return _unavailable("the model version has no reference data", thresholds, reference_rows)
    current_rows = int(total.features[0].sum())
    if current_rows == 0:
        return _unavailable("no scored items in this period", thresholds, reference_rows)

    figures = feature_drift_from_counts(reference, total.features, bins, thresholds)
    features = [
        FeatureDriftFigures(
            index=f.index,
            psi=f.psi,
            ks_statistic=f.ks_statistic,
            ks_p_value=f.ks_p_value,
            ks_p_adjusted=f.ks_p_adjusted,
            ks_error_bound=ks_binned_error_bound(reference[f.index], total.features[f.index]),
            js_distance=f.js_distance,
            level=f.level,
        )
        for f in figures
    ]
    per_day = _days_drift(reference, bins, days, thresholds)
    ranked = sorted(figures, key=lambda f: (-f.psi, -f.ks_statistic, f.index))[:top_n]
    top = [
        FeatureDistributions(
            index=f.index,
            edges=bins[f.index].fine_edges[1:-1].tolist(),
            reference_share=_shares(reference[f.index]),
            current_share=_shares(total.features[f.index]),
        )
        for f in ranked
    ]
    prediction = _prediction_drift(reference_predictions, total.label_counts, labels)
    return DriftReport(
        available=True,
        reason="",
        binning=BINNING,
        ks_method=KS_METHOD,
        correction=thresholds.correction,
        thresholds=thresholds,
        reference_rows=reference_rows,
        current_rows=current_rows,
        features=features,
        drifted_share=sum(f.drifted for f in figures) / len(figures),
        prediction=prediction,
        days=per_day,
        top=top,
    )
