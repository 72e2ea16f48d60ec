"""Measure how far the inputs a model sees today have moved from its reference data.

Plain numpy and SciPy: no Django import. Every statistic comes in two layers: one
builds histogram counts from raw values, the other computes the statistic from
counts. Daily rollups store the counts, and counts add up over days, so a report
built from rollups equals the report built from the raw rows by construction.

The bins and the counts on them are ``analytics.stats.binning``'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats
from scipy.special import rel_entr

from analytics.stats.binning import (
    COARSE_BINS,
    ReferenceBins,
    count_pair,
    feature_histograms,
    histogram,
    merge_bins,
    reference_bin_edges,
    reference_bins_by_feature,
    sample_values,
)

PSI_EPSILON = 1e-4
KSTWO_MAX_N = 10_000

Correction = Literal["holm", "fdr_bh"]
DriftLevel = Literal["none", "moderate", "major"]


def psi_from_counts(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike, epsilon: float = PSI_EPSILON
) -> float:
    """Return the Population Stability Index sum((c - r) * ln(c / r)) over bin shares.

    A symmetrised Kullback-Leibler divergence (Yurdakul 2018, "Statistical properties
    of the population stability index", Western Michigan University). An empty bin
    would give ln(0): every share below epsilon is raised to epsilon first, without
    renormalising. Each term keeps the sign of (c - r) in both factors, so PSI >= 0,
    and it is exactly 0 when the shares are identical. nan if either side is empty.
    """
    if not 0.0 < epsilon < 1.0:
        raise ValueError(f"epsilon must lie strictly between 0 and 1, got {epsilon}")
    reference, current = count_pair(reference_counts, current_counts)
    if reference.sum() == 0 or current.sum() == 0:
        return math.nan
    r = np.maximum(reference / reference.sum(), epsilon)
    c = np.maximum(current / current.sum(), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def psi_rows(
    reference_counts: np.ndarray, current_counts: np.ndarray, epsilon: float = PSI_EPSILON
) -> np.ndarray:
    """Return ``psi_from_counts`` of every row pair of two features x bins count matrices.

    The same formula, vectorised for the per-day figures; nan where a row is empty.
    """
    reference = np.asarray(reference_counts, dtype=np.float64)
    current = np.asarray(current_counts, dtype=np.float64)
    if reference.ndim != 2 or reference.shape != current.shape:
        raise ValueError(f"count matrices differ: {reference.shape} != {current.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.maximum(reference / reference.sum(axis=1, keepdims=True), epsilon)
        c = np.maximum(current / current.sum(axis=1, keepdims=True), epsilon)
        values = np.sum((c - r) * np.log(c / r), axis=1)
    empty = (reference.sum(axis=1) == 0) | (current.sum(axis=1) == 0)
    return np.where(empty, math.nan, values)


def psi(reference: npt.ArrayLike, current: npt.ArrayLike, n_bins: int = COARSE_BINS) -> float:
    """Return quantile-binned PSI: n_bins quantile bins of the reference, then the shares.

    Say which binning a figure uses: Evidently bins reference + current into
    equal-width Sturges bins, which moved PSI by up to 0.03 on the project's data.
    """
    edges = reference_bin_edges(reference, n_bins)
    return psi_from_counts(histogram(reference, edges), histogram(current, edges))


def ks_2samp_statistic(reference: npt.ArrayLike, current: npt.ArrayLike) -> tuple[float, float]:
    """Return the exact two-sample Kolmogorov-Smirnov D and p-value from raw values.

    This is ``scipy.stats.ks_2samp`` with its default method (exact p-value up to
    10,000 values per side, Smirnov's asymptotic one above), kept here so a report
    can put the exact figure beside the binned one of ``ks_from_counts``.
    """
    result = stats.ks_2samp(
        sample_values(reference, "reference"), sample_values(current, "current")
    )
    return float(result.statistic), float(result.pvalue)


def _binned_cdfs(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each sample's share below every interior edge."""
    return (
        np.cumsum(reference)[:-1] / reference.sum(),
        np.cumsum(current)[:-1] / current.sum(),
    )


def _effective_sizes(n: float, m: npt.ArrayLike) -> np.ndarray:
    """Return the two-sample KS effective size round(n * m / (n + m)), at least 1."""
    # SciPy rounds n = m = 1 (en = 0.5) down to a size-0 distribution and returns nan.
    sizes = np.asarray(m, dtype=np.float64)
    return np.maximum(1.0, np.round(n * sizes / (n + sizes)))


def _kolmogorov_p_value(statistic: float, n: float, m: float) -> float:
    """Return the two-sided asymptotic p-value of a two-sample KS statistic."""
    effective_n = float(_effective_sizes(n, m))
    if effective_n <= KSTWO_MAX_N:
        p_value = stats.kstwo.sf(statistic, effective_n)
    else:
        p_value = stats.kstwobign.sf(statistic * math.sqrt(effective_n))
    return float(np.clip(p_value, 0.0, 1.0))


def kolmogorov_limit_p_values(statistics: npt.ArrayLike, n: float, m: npt.ArrayLike) -> np.ndarray:
    """Return two-sided KS p-values from the Kolmogorov limit distribution, vectorised.

    ``kstwobign`` at sqrt(en) * D, en = round(n * m / (n + m)): the distribution
    ``ks_from_counts`` switches to above en = 10,000, here for every size, so that
    many features over many days cost one call. Below that size it is the cruder of
    the two; the per-day drift figures, which use it, say so.
    """
    d = np.asarray(statistics, dtype=np.float64)
    return np.clip(stats.kstwobign.sf(d * np.sqrt(_effective_sizes(n, m))), 0.0, 1.0)


def ks_from_counts(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[float, float]:
    """Return the Kolmogorov-Smirnov D read at the bin edges, and its p-value.

    D_binned is the largest gap between the two empirical CDFs at the interior
    edges. Those are points where the exact D is a supremum, so D_binned <= D; and
    inside a bin each CDF moves by at most that bin's share, which gives
    D <= D_binned + max over bins of min(reference share, current share) (see
    ``ks_binned_error_bound``): on 100 reference-quantile bins, about 0.01.

    The p-value is SciPy's asymptotic one for ks_2samp: the Kolmogorov distribution
    ``kstwo`` at the effective size en = round(n * m / (n + m)) (Smirnov 1939;
    Hodges 1958). Its cost grows with en (0.45 s per feature at 1 M rows a side), so
    above en = 10,000 its limit ``kstwobign`` at sqrt(en) * D is used instead: the
    two differ by under 0.003 there (measured). As D_binned <= D the p-value is
    never smaller than the same formula's at the exact D. nan if either side is empty.
    """
    reference, current = count_pair(reference_counts, current_counts)
    n, m = float(reference.sum()), float(current.sum())
    if n == 0 or m == 0:
        return math.nan, math.nan
    reference_cdf, current_cdf = _binned_cdfs(reference, current)
    statistic = float(np.max(np.abs(reference_cdf - current_cdf), initial=0.0))
    return statistic, _kolmogorov_p_value(statistic, n, m)


def ks_binned_error_bound(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Return the most the exact KS D can exceed the binned one on these bins.

    For x in bin i, F_ref(x) - F_cur(x) lies between the gaps at the bin's two edges
    widened by min(p_i, q_i), p_i and q_i being the bin's reference and current
    shares; so D - D_binned <= max_i min(p_i, q_i).
    """
    reference, current = count_pair(reference_counts, current_counts)
    if reference.sum() == 0 or current.sum() == 0:
        return math.nan
    shares = np.minimum(reference / reference.sum(), current / current.sum())
    return float(shares.max())


def jensen_shannon_from_counts(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> float:
    """Return the Jensen-Shannon distance (base 2, in [0, 1]) between the two bin shares.

    Lin (1991), "Divergence measures based on the Shannon entropy", IEEE Trans. Inf.
    Theory 37:145-151; its square root is a metric (Endres & Schindelin 2003). Equal
    to ``scipy.spatial.distance.jensenshannon(r, c, base=2)``. nan if either side is
    empty.
    """
    reference, current = count_pair(reference_counts, current_counts)
    if reference.sum() == 0 or current.sum() == 0:
        return math.nan
    p, q = reference / reference.sum(), current / current.sum()
    middle = (p + q) / 2.0
    divergence = (np.sum(rel_entr(p, middle)) + np.sum(rel_entr(q, middle))) / np.log(2.0)
    return float(np.sqrt(max(divergence / 2.0, 0.0)))


def chi_square_from_counts(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[float, float, int]:
    """Return Pearson's chi-square statistic, p-value and degrees of freedom of label drift.

    The test of homogeneity on the 2 x k table (reference, current) x label,
    labels empty on both sides dropped: ``scipy.stats.chi2_contingency`` with
    ``correction=False``. Yates' continuity correction does not apply for k > 2 (SciPy
    applies it only when dof = 1), and for two labels this leaves it off too, so every
    k gets the same Pearson test; at a day's volume of items the correction would only
    make the two-label case more conservative. One label left gives (0, 1, 0); an
    empty side gives nan.
    """
    reference, current = count_pair(reference_counts, current_counts)
    table = np.vstack((reference, current))
    table = table[:, table.sum(axis=0) > 0]
    if reference.sum() == 0 or current.sum() == 0:
        return math.nan, math.nan, table.shape[1] - 1
    dof = table.shape[1] - 1
    if dof == 0:
        return 0.0, 1.0, 0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(stats.chi2.sf(statistic, dof)), dof


def adjust_p_values(p_values: npt.ArrayLike, method: Correction = "holm") -> np.ndarray:
    """Return p-values adjusted for testing many features at once.

    "holm" (the default) controls the family-wise error rate under any dependence
    between features: Holm (1979), "A simple sequentially rejective multiple test
    procedure", Scand. J. Stat. 6:65-70. "fdr_bh" controls the false discovery rate
    instead, for independent or positively dependent tests: Benjamini & Hochberg
    (1995), JRSS B 57:289-300. Both equal
    ``statsmodels.stats.multitest.multipletests(p, method=...)[1]``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("p_values must be a 1-D array of numbers in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    ordered = p[order]
    if method == "holm":
        adjusted = np.maximum.accumulate(ordered * np.arange(m, 0, -1))
    elif method == "fdr_bh":
        raw = ordered * m / np.arange(1, m + 1)
        adjusted = np.minimum.accumulate(raw[::-1])[::-1]
    else:
        raise ValueError(f"unknown correction {method!r}; use 'holm' or 'fdr_bh'")
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    return result


# --- per-feature report ------------------------------------------------------------------


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature counts as drifted.

    PSI 0.1 and 0.25 are the usual "moderate" and "major" shift lines (Siddiqi 2006,
    "Credit Risk Scorecards", Wiley). KS flags a feature only when its adjusted
    p-value is below ks_alpha AND D >= ks_min_statistic: at 100,000 rows a side
    p < 0.05 already follows from D = 0.006, a shift nobody would act on (at 1 M rows
    the project saw 9 of 64 features at p < 0.05 when 8 were shifted). D = 0.05 is
    about a 0.125 standard deviation shift of a normal mean, and five times the
    largest error of D read on 100 fine bins.
    """

    psi_moderate: float = 0.1
    psi_major: float = 0.25
    ks_alpha: float = 0.05
    ks_min_statistic: float = 0.05
    correction: Correction = "holm"

    def __post_init__(self) -> None:
        if not 0.0 < self.psi_moderate <= self.psi_major:
            raise ValueError("need 0 < psi_moderate <= psi_major")
        if not 0.0 < self.ks_alpha < 1.0:
            raise ValueError(f"ks_alpha must lie strictly between 0 and 1, got {self.ks_alpha}")
        if not 0.0 <= self.ks_min_statistic <= 1.0:
            raise ValueError(f"ks_min_statistic must lie in [0, 1], got {self.ks_min_statistic}")
        if self.correction not in ("holm", "fdr_bh"):
            raise ValueError(f"unknown correction {self.correction!r}; use 'holm' or 'fdr_bh'")


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift figures: PSI on coarse bins, KS and JS on fine bins."""

    index: int
    psi: float
    ks_statistic: float
    ks_p_value: float
    ks_p_adjusted: float
    js_distance: float
    level: DriftLevel

    @property
    def drifted(self) -> bool:
        """Return whether the feature moved enough to show on a dashboard."""
        return self.level != "none"


def drift_level(
    psi_value: float, ks_statistic: float, ks_p_adjusted: float, thresholds: DriftThresholds
) -> DriftLevel:
    """Return "major" past psi_major; "moderate" past psi_moderate or a large, significant KS."""
    if psi_value >= thresholds.psi_major:
        return "major"
    ks_flags = ks_p_adjusted < thresholds.ks_alpha and ks_statistic >= thresholds.ks_min_statistic
    if psi_value >= thresholds.psi_moderate or ks_flags:
        return "moderate"
    return "none"


def feature_drift_from_counts(
    reference_counts: Sequence[npt.ArrayLike],
    current_counts: Sequence[npt.ArrayLike],
    bins: Sequence[ReferenceBins],
    thresholds: DriftThresholds | None = None,
) -> list[FeatureDrift]:
    """Return every feature's drift from fine-bin counts, KS p-values adjusted together.

    PSI is read on the coarse bins (its 0.1 / 0.25 lines assume about ten bins;
    finer bins inflate it), KS and Jensen-Shannon on the fine bins.
    """
    limits = thresholds or DriftThresholds()
    if not len(reference_counts) == len(current_counts) == len(bins):
        raise ValueError("need reference counts, current counts and bins for every feature")
    rows = []
    for reference, current, edges in zip(reference_counts, current_counts, bins, strict=True):
        first, second = count_pair(reference, current)
        if first.sum() == 0 or second.sum() == 0:
            raise ValueError("a drift report needs reference and current rows")
        psi_value = psi_from_counts(
            merge_bins(first, edges.fine_edges, edges.coarse_edges),
            merge_bins(second, edges.fine_edges, edges.coarse_edges),
        )
        statistic, p_value = ks_from_counts(first, second)
        rows.append((psi_value, statistic, p_value, jensen_shannon_from_counts(first, second)))
    adjusted = adjust_p_values([row[2] for row in rows], limits.correction)
    return [
        FeatureDrift(
            index=j,
            psi=psi_value,
            ks_statistic=statistic,
            ks_p_value=p_value,
            ks_p_adjusted=float(adjusted[j]),
            js_distance=js,
            level=drift_level(psi_value, statistic, float(adjusted[j]), limits),
        )
        for j, (psi_value, statistic, p_value, js) in enumerate(rows)
    ]


def feature_drift(
    reference: npt.ArrayLike, current: npt.ArrayLike, thresholds: DriftThresholds | None = None
) -> list[FeatureDrift]:
    """Return every column's drift from raw rows, through the same counts rollups store."""
    bins = reference_bins_by_feature(reference)
    return feature_drift_from_counts(
        feature_histograms(reference, bins), feature_histograms(current, bins), bins, thresholds
    )
