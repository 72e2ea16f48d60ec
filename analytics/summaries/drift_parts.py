"""Parts of the drift report: out-of-range values and predicted-label drift (no Django import)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics.stats.binning import ReferenceBins
from analytics.stats.chi_square import chi_square_test_from_counts
from analytics.stats.drift import DriftThresholds
from analytics.stats.drift_window import (
    WindowFeatureDrift,
    psi_null,
    psi_smoothed_from_counts,
)
from analytics.stats.feature_extremes import FeatureExtremes

PREDICTION_ALPHA = 0.05


@dataclass(frozen=True)
class OutOfRange:
    """One feature's values outside the reference's range, with how far they went."""

    index: int
    below: float
    above: float
    reference_minimum: float
    reference_maximum: float
    current_minimum: float
    current_maximum: float
    sentence: str


def _sentence(
    index: int, below: float, above: float, bins: ReferenceBins, low: float, high: float
) -> str:
    parts = []
    if above > 0:
        farthest = f", up to {high:g}" if math.isfinite(high) else ""
        parts.append(f"{above:.1%} above the reference maximum {bins.maximum:g}{farthest}")
    if below > 0:
        farthest = f", down to {low:g}" if math.isfinite(low) else ""
        parts.append(f"{below:.1%} below the reference minimum {bins.minimum:g}{farthest}")
    return f"f{index}: " + "; ".join(parts) + "."


def out_of_range_figures(
    window: Sequence[WindowFeatureDrift],
    bins: Sequence[ReferenceBins],
    extremes: FeatureExtremes | None,
) -> list[OutOfRange]:
    """Return the features with current values outside the reference's range, most first."""
    found = []
    for feature in window:
        below, above = feature.current_below, feature.current_above
        if not (below > 0 or above > 0):
            continue
        j = feature.index
        low = float(extremes.minimum[j]) if extremes is not None else math.nan
        high = float(extremes.maximum[j]) if extremes is not None else math.nan
        found.append(
            OutOfRange(
                index=j,
                below=below,
                above=above,
                reference_minimum=bins[j].minimum,
                reference_maximum=bins[j].maximum,
                current_minimum=low,
                current_maximum=high,
                sentence=_sentence(j, below, above, bins[j], low, high),
            )
        )
    return sorted(found, key=lambda f: (-(f.below + f.above), f.index))


@dataclass(frozen=True)
class PredictionDrift:
    """Predicted-label shares now against the reference data's, smoothed PSI and chi-square."""

    labels: list[str]
    reference_counts: list[int]
    current_counts: list[int]
    psi: float
    psi_expected: float
    psi_critical: float
    chi_square: float
    p_value: float
    dof: int
    test_method: str
    beyond_noise: bool
    sentence: str


def prediction_drift(
    reference_predictions: npt.ArrayLike,
    label_counts: np.ndarray,
    labels: Sequence[str],
    thresholds: DriftThresholds,
) -> PredictionDrift | None:
    """Return the predicted-label drift, None when either side has no predictions.

    The chi-square test's p-value is Monte-Carlo when an expected count is under 5
    (rare labels made the asymptotic one reject 8% of no-drift windows of 50 at 5%);
    PSI is smoothed and read against its no-drift critical value at alpha 0.05.
    """
    predicted = np.asarray(reference_predictions, dtype=np.int64)
    if predicted.sum() == 0 or label_counts.sum() == 0:
        return None
    test = chi_square_test_from_counts(predicted, label_counts)
    kept = (predicted + label_counts) > 0
    psi = psi_smoothed_from_counts(predicted[kept], label_counts[kept])
    null = psi_null(
        n=float(label_counts.sum()),
        m=float(predicted.sum()),
        n_bins=int(kept.sum()),
        alpha=PREDICTION_ALPHA,
    )
    beyond = psi >= null.critical and psi >= thresholds.psi_moderate
    if test.dof == 0:
        tested = f"No chi-square test: {test.method}."
    else:
        tested = (
            f"Chi-square {test.statistic:.1f} on {test.dof} degrees of freedom, "
            f"p = {test.p_value:.2g} ({test.method})."
        )
    sentence = (
        f"{tested} Smoothed PSI {psi:.3f}; with no drift it averages {null.expected:.3f} at "
        f"this size and passes {null.critical:.3f} in 5% of windows"
        + (", so this is beyond noise." if beyond else ".")
    )
    return PredictionDrift(
        labels=list(labels),
        reference_counts=predicted.tolist(),
        current_counts=label_counts.tolist(),
        psi=psi,
        psi_expected=null.expected,
        psi_critical=null.critical,
        chi_square=test.statistic,
        p_value=test.p_value,
        dof=test.dof,
        test_method=test.method,
        beyond_noise=beyond,
        sentence=sentence,
    )
