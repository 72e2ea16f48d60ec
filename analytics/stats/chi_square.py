"""Pearson's chi-square test of homogeneity that stays honest when expected counts are small.

Pure numpy/SciPy: no Django import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from analytics.stats.binning import count_pair
from analytics.stats.drift import chi_square_from_counts

CHI_SQUARE_MIN_EXPECTED = 5.0
CHI_SQUARE_RESAMPLES = 2000
CHI_SQUARE_SEED = 0


@dataclass(frozen=True)
class ChiSquareTest:
    """A chi-square test of homogeneity, saying how its p-value was obtained."""

    statistic: float
    p_value: float
    dof: int
    method: str


def _pearson_statistics(current_rows: np.ndarray, totals: np.ndarray, n: float) -> np.ndarray:
    """Return Pearson's statistic of 2 x k tables given by their current rows and column totals."""
    grand = float(totals.sum())
    expected_current = totals * (n / grand)
    expected_reference = totals - expected_current
    reference_rows = totals - current_rows
    return np.sum(
        (current_rows - expected_current) ** 2 / expected_current
        + (reference_rows - expected_reference) ** 2 / expected_reference,
        axis=-1,
    )


def _sparse_pooled(
    reference: np.ndarray, current: np.ndarray, min_expected: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return the table with its sparse bins pooled into one, or None if that leaves it sparse.

    Bins whose expected count is under min_expected on either side are added together
    (and, if the pooled bin is still sparse, added to the smallest other bin). Which bins
    are pooled depends only on the margins, which the test conditions on. Large windows
    of low-cardinality features take this path; small ones, where even the pooled table
    is sparse, get the Monte-Carlo p-value.
    """
    totals = reference + current
    share = current.sum() / totals.sum()
    expected = np.minimum(totals * share, totals * (1.0 - share))
    sparse = expected < min_expected
    if not sparse.any() or np.count_nonzero(~sparse) < 2:
        return None
    keep_reference, keep_current = list(reference[~sparse]), list(current[~sparse])
    pooled_reference, pooled_current = reference[sparse].sum(), current[sparse].sum()
    pooled_total = pooled_reference + pooled_current
    if min(pooled_total * share, pooled_total * (1.0 - share)) < min_expected:
        smallest = int(np.argmin(np.asarray(keep_reference) + np.asarray(keep_current)))
        keep_reference[smallest] += pooled_reference
        keep_current[smallest] += pooled_current
    else:
        keep_reference.append(pooled_reference)
        keep_current.append(pooled_current)
    if len(keep_reference) < 2:
        return None
    reference_out, current_out = np.asarray(keep_reference), np.asarray(keep_current)
    totals_out = reference_out + current_out
    if np.minimum(totals_out * share, totals_out * (1.0 - share)).min() < min_expected:
        return None
    return reference_out, current_out


def chi_square_test_from_counts(
    reference_counts: npt.ArrayLike,
    current_counts: npt.ArrayLike,
    min_expected: float = CHI_SQUARE_MIN_EXPECTED,
    resamples: int = CHI_SQUARE_RESAMPLES,
    seed: int = CHI_SQUARE_SEED,
) -> ChiSquareTest:
    """Return Pearson's test of homogeneity, Monte-Carlo when an expected count is small.

    With every expected count at least min_expected (Cochran 1954) the p-value is the
    chi-square one of ``chi_square_from_counts``; when only some bins are sparse and
    pooling them leaves a table without sparse bins, it is the chi-square one of the
    pooled table (``_sparse_pooled``). Otherwise the asymptotic p-value is anti-conservative
    (size 0.080 at n = 50 with rare labels), so the p-value is a Monte-Carlo one
    conditional on both margins, as R's ``chisq.test(simulate.p.value = TRUE)``
    (Hope 1968; Patefield 1981): ``resamples`` tables drawn by multivariate
    hypergeometric sampling with a fixed seed, p = (1 + #{X >= x}) / (resamples + 1),
    which keeps the size at or under alpha for any counts. Counts must be whole numbers.
    """
    reference, current = count_pair(reference_counts, current_counts)
    statistic, p_value, dof = chi_square_from_counts(reference, current)
    if math.isnan(statistic) or dof == 0:
        return ChiSquareTest(statistic, p_value, dof, "no test: one label or an empty side")
    kept = (reference + current) > 0
    reference, current = reference[kept], current[kept]
    totals = reference + current
    n = float(current.sum())
    expected = np.concatenate((totals * n / totals.sum(), totals * (1.0 - n / totals.sum())))
    if expected.min() >= min_expected:
        return ChiSquareTest(statistic, p_value, dof, "asymptotic chi-square")
    pooled = _sparse_pooled(reference, current, min_expected)
    if pooled is not None:
        pooled_statistic, pooled_p, pooled_dof = chi_square_from_counts(*pooled)
        return ChiSquareTest(
            pooled_statistic,
            pooled_p,
            pooled_dof,
            f"asymptotic chi-square after pooling the bins with an expected count under"
            f" {min_expected:g} (Cochran 1954)",
        )
    if np.any(totals != np.round(totals)):
        raise ValueError("a Monte-Carlo test needs whole-number counts")
    rng = np.random.default_rng(seed)
    tables = rng.multivariate_hypergeometric(totals.astype(np.int64), int(n), size=resamples)
    simulated = _pearson_statistics(tables.astype(np.float64), totals, n)
    # A relative tolerance so a simulated table equal to the observed one counts as >=.
    exceed = int(np.count_nonzero(simulated >= statistic * (1.0 - 1e-9)))
    return ChiSquareTest(
        statistic=statistic,
        p_value=(1.0 + exceed) / (resamples + 1.0),
        dof=dof,
        method=(
            f"Monte-Carlo, {resamples} tables with both margins fixed (seed {seed}):"
            f" an expected count is under {min_expected:g}"
        ),
    )
