"""Drift figures that hold on windows of any size, out-of-range values and point masses.

Plain numpy and SciPy: no Django import. ``analytics.stats.drift`` reads PSI against fixed
lines and bins by reference quantiles; on a window of 30 or 100 items those lines
flag noise, and quantile bins miss a feature that leaves the reference's range or
moves between a few distinct values. Here PSI is smoothed on both sides and tested
against its no-drift distribution at the window's size, the bins
(``analytics.stats.binning.reference_bins_with_range``) see out-of-range values and give
a few-valued feature a bin per value, tested with a chi-square that stays exact when
counts are small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from scipy import stats

from analytics.stats.binning import (
    ReferenceBins,
    count_pair,
    feature_histograms,
    merge_bins,
    out_of_range_shares,
    point_mass_bins,
    reference_bins_with_range_by_feature,
)
from analytics.stats.chi_square import chi_square_test_from_counts
from analytics.stats.drift import (
    DriftLevel,
    DriftThresholds,
    adjust_p_values,
    jensen_shannon_from_counts,
    kolmogorov_limit_p_values,
    ks_from_counts,
)

PSI_PSEUDO_COUNT = 0.5
PSI_SMOOTHING = "0.5 added to every bin's count on both sides, shares renormalised (Jeffreys)"
PSI_NULL_SOURCE = "PSI ~ (1/n + 1/m) chi-square(bins - 1) under no drift (Yurdakul & Naranjo 2020)"
# PSI and the test each get a quarter of a window's error budget, not a half: at the
# Bonferroni levels of 64 features (about 4e-4) the chi-square tails of PSI and of
# Pearson's statistic were measured at twice their nominal rate on 100 items.
WINDOW_ALPHA_SHARE = 0.25


def psi_smoothed_from_counts(
    reference_counts: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    pseudo_count: float = PSI_PSEUDO_COUNT,
) -> float:
    """Return PSI after adding pseudo_count to every bin on both sides and renormalising.

    ``psi_from_counts`` raises an empty bin's share to 1e-4 without renormalising, so
    one empty bin alone reads "major" (0.70). Adding 0.5 to every count on both sides
    (Jeffreys' prior on the bin shares) treats both samples alike, keeps the shares
    summing to 1, and keeps PSI >= 0 and 0 on identical counts. nan if a side is empty.
    """
    if not pseudo_count > 0.0:
        raise ValueError(f"pseudo_count must be positive, got {pseudo_count}")
    reference, current = count_pair(reference_counts, current_counts)
    if reference.sum() == 0 or current.sum() == 0:
        return math.nan
    r = (reference + pseudo_count) / (reference.sum() + pseudo_count * reference.size)
    c = (current + pseudo_count) / (current.sum() + pseudo_count * current.size)
    return float(np.sum((c - r) * np.log(c / r)))


@dataclass(frozen=True)
class PsiNull:
    """What PSI reads with no drift at these sample sizes: its mean and a critical value."""

    expected: float
    critical: float
    alpha: float
    source: str = PSI_NULL_SOURCE


def psi_null(*, n: float, m: float, n_bins: int, alpha: float = 0.05) -> PsiNull:
    """Return PSI's expected value and its 1 - alpha quantile under no drift.

    Yurdakul & Naranjo (2020), "Statistical properties of the population stability
    index", Journal of Risk Model Validation 14(4) (Yurdakul 2018, Western Michigan
    University): with n current and m reference values on B bins, PSI is
    asymptotically (1/n + 1/m) times a chi-square with B - 1 degrees of freedom, so
    its mean is (B - 1)(1/n + 1/m). At n = 100, m = 10,000 and ten bins that is 0.09,
    close to the usual 0.1 line, which is why a fixed line flags noise on small windows.
    """
    if n <= 0 or m <= 0:
        raise ValueError(f"need positive sample sizes, got n={n}, m={m}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    scale = 1.0 / n + 1.0 / m
    dof = n_bins - 1
    if dof == 0:
        return PsiNull(expected=0.0, critical=0.0, alpha=alpha)
    return PsiNull(
        expected=scale * dof, critical=scale * float(stats.chi2.isf(alpha, dof)), alpha=alpha
    )


def ks_error_bound_on_edges(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike, edges: npt.ArrayLike
) -> float:
    """Return ``ks_binned_error_bound`` leaving out bins that hold a single value.

    Both empirical CDFs jump at the same point inside a bin [v, next double), so the
    binned D is exact there; only bins spanning a range of values can hide a gap.
    """
    reference, current = count_pair(reference_counts, current_counts)
    if reference.sum() == 0 or current.sum() == 0:
        return math.nan
    shares = np.minimum(reference / reference.sum(), current / current.sum())
    return float(np.max(np.where(point_mass_bins(edges), 0.0, shares), initial=0.0))


@dataclass(frozen=True)
class WindowFeatureDrift:
    """One feature's drift on a window of any size, every figure saying what it rests on.

    ``psi`` is smoothed PSI on the coarse bins (``PSI_SMOOTHING``), with its expected
    value and critical value under no drift; ``ks_*`` are the binned KS figures on the
    fine bins; ``test_*`` is the test the level uses: KS for a continuous feature,
    chi-square (``test_method`` says asymptotic or Monte-Carlo) for a categorical one.
    """

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
    reference_below: float
    reference_above: float
    current_below: float
    current_above: float
    level: DriftLevel

    @property
    def drifted(self) -> bool:
        """Return whether the feature moved enough to show on a dashboard."""
        return self.level != "none"


def window_drift_level(
    *,
    psi_value: float,
    psi_critical: float,
    ks_statistic: float,
    ks_error_bound: float,
    test_p_adjusted: float,
    bound_p_value: float,
    features: int,
    thresholds: DriftThresholds,
) -> DriftLevel:
    """Return a feature's level: PSI past a policy line and its no-drift critical value,
    or a significant test with a large enough D, or a binned D too coarse to tell.

    "Too coarse" is an error bound at least ks_min_statistic with the KS test at the
    largest D the bins allow (bound_p_value) significant after Bonferroni. The test
    flags below ks_alpha * WINDOW_ALPHA_SHARE, as psi_critical is taken.
    """
    significant_psi = psi_value >= psi_critical
    if significant_psi and psi_value >= thresholds.psi_major:
        return "major"
    test_flags = (
        test_p_adjusted < thresholds.ks_alpha * WINDOW_ALPHA_SHARE
        and ks_statistic >= thresholds.ks_min_statistic
    )
    uninformative = (
        ks_error_bound >= thresholds.ks_min_statistic
        and bound_p_value * features < thresholds.ks_alpha
    )
    if (significant_psi and psi_value >= thresholds.psi_moderate) or test_flags or uninformative:
        return "moderate"
    return "none"


def _informative_pair(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the counts of the bins where either side has a value."""
    # A bin empty on both sides says nothing, yet smoothing would give it a share
    # of 0.5 / n on the small side: on 30 items, 0.06 of PSI per such bin.
    kept = (reference + current) > 0
    return reference[kept], current[kept]


def window_feature_drift_from_counts(
    reference_counts: Sequence[npt.ArrayLike],
    current_counts: Sequence[npt.ArrayLike],
    bins: Sequence[ReferenceBins],
    thresholds: DriftThresholds | None = None,
) -> list[WindowFeatureDrift]:
    """Return every feature's drift from fine-bin counts, for a window of any size.

    The bins should be ``reference_bins_with_range``'s (out-of-range shares need
    their range edges; elsewhere they are nan). PSI's critical value is taken at
    ks_alpha * WINDOW_ALPHA_SHARE / features (Bonferroni), and the tests' p-values,
    adjusted together with the thresholds' correction, flag below ks_alpha *
    WINDOW_ALPHA_SHARE; so a window with no drift flags any feature in at most about
    ks_alpha of windows (measured: see the tests).
    """
    limits = thresholds or DriftThresholds()
    if not len(reference_counts) == len(current_counts) == len(bins):
        raise ValueError("need reference counts, current counts and bins for every feature")
    features = len(bins)
    psi_alpha = limits.ks_alpha * WINDOW_ALPHA_SHARE / features
    unadjusted: list[WindowFeatureDrift] = []
    bound_p_values: list[float] = []
    for j, (reference, current, edges) in enumerate(
        zip(reference_counts, current_counts, bins, strict=True)
    ):
        first, second = count_pair(reference, current)
        n, m = float(second.sum()), float(first.sum())
        if n == 0 or m == 0:
            raise ValueError("a drift report needs reference and current rows")
        coarse_reference, coarse_current = _informative_pair(
            merge_bins(first, edges.fine_edges, edges.coarse_edges),
            merge_bins(second, edges.fine_edges, edges.coarse_edges),
        )
        psi_value = psi_smoothed_from_counts(coarse_reference, coarse_current)
        null = psi_null(n=n, m=m, n_bins=coarse_reference.size, alpha=psi_alpha)
        statistic, ks_p = ks_from_counts(first, second)
        bound = ks_error_bound_on_edges(first, second, edges.fine_edges)
        if edges.categorical:
            test = chi_square_test_from_counts(first, second)
            test_p, method = test.p_value, f"chi-square, {test.method}"
        else:
            test_p, method = ks_p, "Kolmogorov-Smirnov on fine bins"
        reference_below, reference_above = out_of_range_shares(first, edges)
        current_below, current_above = out_of_range_shares(second, edges)
        bound_p_values.append(
            float(kolmogorov_limit_p_values([min(1.0, statistic + bound)], m, n)[0])
        )
        unadjusted.append(
            WindowFeatureDrift(
                index=j,
                categorical=edges.categorical,
                psi=psi_value,
                psi_expected=null.expected,
                psi_critical=null.critical,
                ks_statistic=statistic,
                ks_error_bound=bound,
                ks_p_value=ks_p,
                ks_p_adjusted=math.nan,
                test_p_value=test_p,
                test_p_adjusted=math.nan,
                test_method=method,
                js_distance=jensen_shannon_from_counts(first, second),
                reference_below=reference_below,
                reference_above=reference_above,
                current_below=current_below,
                current_above=current_above,
                level="none",
            )
        )
    ks_adjusted = adjust_p_values([f.ks_p_value for f in unadjusted], limits.correction)
    test_adjusted = adjust_p_values([f.test_p_value for f in unadjusted], limits.correction)
    result = []
    for feature, ks_adj, test_adj, bound_p in zip(
        unadjusted, ks_adjusted, test_adjusted, bound_p_values, strict=True
    ):
        level = window_drift_level(
            psi_value=feature.psi,
            psi_critical=feature.psi_critical,
            ks_statistic=feature.ks_statistic,
            ks_error_bound=feature.ks_error_bound,
            test_p_adjusted=float(test_adj),
            bound_p_value=bound_p,
            features=features,
            thresholds=limits,
        )
        result.append(
            replace(
                feature,
                ks_p_adjusted=float(ks_adj),
                test_p_adjusted=float(test_adj),
                level=level,
            )
        )
    return result


def window_feature_drift(
    reference: npt.ArrayLike, current: npt.ArrayLike, thresholds: DriftThresholds | None = None
) -> list[WindowFeatureDrift]:
    """Return every column's window drift from raw rows, on range-aware bins."""
    bins = reference_bins_with_range_by_feature(reference)
    return window_feature_drift_from_counts(
        feature_histograms(reference, bins), feature_histograms(current, bins), bins, thresholds
    )
