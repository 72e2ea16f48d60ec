"""Window drift for every day of a report at once: smoothed PSI against its null, and KS.

Plain numpy and SciPy: no Django import. ``drift_window.window_feature_drift_from_counts``
runs a Monte-Carlo chi-square per few-valued feature (about 0.4 s for 64 features), too
slow for every day of a month; per day the same smoothed PSI and its no-drift critical
value decide, vectorised over features, with the KS test (Kolmogorov limit p-values) for
continuous features.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import stats

from analytics.stats.drift import DriftThresholds, adjust_p_values, kolmogorov_limit_p_values
from analytics.stats.drift_window import PSI_PSEUDO_COUNT, WINDOW_ALPHA_SHARE

DAY_METHOD = (
    "per day, a feature counts as drifted when its smoothed PSI passes both the moderate line "
    "and its no-drift critical value at that day's size, or (continuous features) when its "
    "binned KS test, Kolmogorov limit p-values corrected over the day's features, is "
    "significant with a large enough D; the Monte-Carlo chi-square of few-valued features "
    "runs on the whole range only"
)


def psi_smoothed_rows(
    reference: npt.ArrayLike, current: npt.ArrayLike, pseudo_count: float = PSI_PSEUDO_COUNT
) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's smoothed PSI over the bins either side fills, and how many bins.

    Row j is ``psi_smoothed_from_counts`` of row j's bins where reference or current has a
    value (a bin empty on both sides says nothing; see ``drift_window``). nan where a side
    of the row is empty.
    """
    r = np.asarray(reference, dtype=np.float64)
    c = np.asarray(current, dtype=np.float64)
    if r.ndim != 2 or r.shape != c.shape:
        raise ValueError(f"count matrices differ: {r.shape} != {c.shape}")
    kept = (r + c) > 0
    bins = kept.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r_share = (
            np.where(kept, r + pseudo_count, 0.0) / (r.sum(axis=1) + pseudo_count * bins)[:, None]
        )
        c_share = (
            np.where(kept, c + pseudo_count, 0.0) / (c.sum(axis=1) + pseudo_count * bins)[:, None]
        )
        terms = np.where(kept, (c_share - r_share) * np.log(c_share / r_share), 0.0)
    empty = (r.sum(axis=1) == 0) | (c.sum(axis=1) == 0)
    return np.where(empty, np.nan, terms.sum(axis=1)), bins


def psi_critical_rows(
    *, n: float, m: npt.ArrayLike, bins: npt.ArrayLike, alpha: float
) -> np.ndarray:
    """Return ``psi_null(n=n, m=m_j, n_bins=bins_j, alpha=alpha).critical`` for every row."""
    sizes = np.asarray(m, dtype=np.float64)
    dof = np.asarray(bins, dtype=np.int64) - 1
    scale = 1.0 / n + 1.0 / sizes
    quantile = stats.chi2.isf(alpha, np.maximum(dof, 1))
    return np.where(dof > 0, scale * quantile, 0.0)


def day_drift_flags(
    *,
    reference_coarse: np.ndarray,
    current_coarse: np.ndarray,
    reference_fine: np.ndarray,
    current_fine: np.ndarray,
    categorical: np.ndarray,
    thresholds: DriftThresholds,
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per feature of one day, whether it drifted beyond noise, and its smoothed PSI.

    Matrices are features x bins, padded with bins empty on both sides. PSI's critical
    value and the KS test take the window's error budget as
    ``window_feature_drift_from_counts`` does (ks_alpha * WINDOW_ALPHA_SHARE, Bonferroni
    over the features for PSI, the thresholds' correction for KS).
    """
    features = reference_coarse.shape[0]
    n = float(current_fine[0].sum())
    m = reference_fine.sum(axis=1)
    alpha = thresholds.ks_alpha * WINDOW_ALPHA_SHARE
    psi, bins = psi_smoothed_rows(reference_coarse, current_coarse)
    critical = psi_critical_rows(n=n, m=m, bins=bins, alpha=alpha / features)
    psi_flags = (psi >= critical) & (psi >= thresholds.psi_moderate)
    reference_cdf = np.cumsum(reference_fine, axis=1)[:, :-1] / m[:, None]
    current_cdf = np.cumsum(current_fine, axis=1)[:, :-1] / n
    statistic = np.abs(reference_cdf - current_cdf).max(axis=1, initial=0.0)
    p_values = kolmogorov_limit_p_values(statistic, n, m)
    adjusted = adjust_p_values(p_values, thresholds.correction)
    ks_flags = ~categorical & (adjusted < alpha) & (statistic >= thresholds.ks_min_statistic)
    return psi_flags | ks_flags, psi
