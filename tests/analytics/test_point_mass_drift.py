"""Drift on small windows, out-of-range values, point masses and rare labels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from analytics.stats.binning import (
    feature_histograms,
    histogram,
    out_of_range_shares,
    point_mass_bins,
    reference_bins,
    reference_bins_with_range,
    reference_bins_with_range_by_feature,
)
from analytics.stats.chi_square import chi_square_test_from_counts
from analytics.stats.drift import psi_from_counts, psi_rows
from analytics.stats.drift_window import (
    ks_error_bound_on_edges,
    psi_null,
    psi_smoothed_from_counts,
    window_feature_drift,
    window_feature_drift_from_counts,
)

REFERENCE_ROWS = 10_000
FEATURES = 64


def test_one_item_in_a_bin_the_reference_leaves_empty_is_no_drift_at_ten_items() -> None:
    reference = np.array([1000] * 9 + [0])
    current = np.array([1] * 9 + [1])
    assert psi_from_counts(reference, current) > 0.25
    null = psi_null(n=10, m=9000, n_bins=10, alpha=0.05 / 64)
    assert psi_smoothed_from_counts(reference, current) < null.critical


def test_smoothing_treats_both_sides_alike() -> None:
    reference, current = np.array([5, 0, 20]), np.array([0, 3, 9])
    assert psi_smoothed_from_counts(reference, current) == pytest.approx(
        psi_smoothed_from_counts(current, reference)
    )


counts = st.lists(st.integers(0, 50), min_size=2, max_size=12)


@given(counts, counts)
def test_smoothed_psi_is_never_negative(reference: list[int], current: list[int]) -> None:
    size = min(len(reference), len(current))
    first, second = np.array(reference[:size]), np.array(current[:size])
    if first.sum() == 0 or second.sum() == 0:
        return
    assert psi_smoothed_from_counts(first, second) >= 0.0


@given(counts, st.integers(1, 5))
def test_smoothed_psi_is_zero_on_identical_counts(reference: list[int], scale: int) -> None:
    first = np.array(reference)
    if first.sum() == 0:
        return
    assert psi_smoothed_from_counts(first, first) == pytest.approx(0.0, abs=1e-12)


def test_psi_null_is_the_scaled_chi_square_of_yurdakul_and_naranjo() -> None:
    null = psi_null(n=100, m=10_000, n_bins=10, alpha=0.01)
    assert null.expected == pytest.approx(9 * (1 / 100 + 1 / 10_000))
    assert null.critical == pytest.approx((1 / 100 + 1 / 10_000) * stats.chi2.ppf(0.99, 9))


def test_psi_without_drift_averages_its_expected_value() -> None:
    rng = np.random.default_rng(7)
    shares = np.full(10, 0.1)
    n, m = 1000, 10_000
    current = rng.multinomial(n, shares, size=4000)
    reference = rng.multinomial(m, shares, size=4000)
    mean = float(np.mean(psi_rows(reference, current)))
    assert mean == pytest.approx(psi_null(n=n, m=m, n_bins=10).expected, rel=0.05)


def _no_drift_flag_rate(n: int, runs: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(REFERENCE_ROWS, FEATURES))
    bins = reference_bins_with_range_by_feature(reference)
    reference_counts = feature_histograms(reference, bins)
    flagged = 0
    for _ in range(runs):
        current = feature_histograms(rng.normal(size=(n, FEATURES)), bins)
        report = window_feature_drift_from_counts(reference_counts, current, bins)
        flagged += any(feature.drifted for feature in report)
    return flagged / runs


@pytest.mark.parametrize("n", [30, 100, 300])
def test_windows_without_drift_rarely_flag_any_of_64_features(n: int) -> None:
    assert _no_drift_flag_rate(n, runs=40, seed=n) <= 0.05


def test_few_valued_windows_without_drift_rarely_flag_any_feature() -> None:
    rng = np.random.default_rng(11)
    shares = np.r_[0.5, np.full(16, 0.5 / 16)]
    reference = rng.choice(17, p=shares, size=(REFERENCE_ROWS, 16)).astype(float)
    bins = reference_bins_with_range_by_feature(reference)
    assert all(b.categorical for b in bins)
    reference_counts = feature_histograms(reference, bins)
    flagged = 0
    for _ in range(10):
        current = rng.choice(17, p=shares, size=(100, 16)).astype(float)
        report = window_feature_drift_from_counts(
            reference_counts, feature_histograms(current, bins), bins
        )
        flagged += any(feature.drifted for feature in report)
    assert flagged <= 1


def test_a_constant_feature_that_moves_above_its_range_is_major() -> None:
    drift = window_feature_drift(np.zeros((REFERENCE_ROWS, 1)), np.full((30, 1), 5.0))[0]
    assert drift.categorical
    assert drift.level == "major"
    assert (drift.reference_above, drift.current_above) == (0.0, 1.0)
    assert drift.ks_statistic == 1.0


def test_a_zero_one_feature_that_becomes_zero_seven_is_flagged() -> None:
    rng = np.random.default_rng(3)
    reference = rng.integers(0, 2, size=(REFERENCE_ROWS, 1)).astype(float)
    current = rng.integers(0, 2, size=(100, 1)).astype(float) * 7.0
    drift = window_feature_drift(reference, current)[0]
    assert drift.drifted
    assert drift.current_above == pytest.approx(float(np.mean(current == 7.0)))


def test_a_continuous_feature_pushed_past_its_maximum_is_flagged() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(size=(REFERENCE_ROWS, 1))
    current = rng.normal(size=(100, 1))
    current[:20] = 10.0
    drift = window_feature_drift(reference, current)[0]
    assert not drift.categorical
    assert drift.current_above == pytest.approx(0.2)
    assert drift.drifted


def test_a_point_mass_inside_a_continuous_feature_gets_a_bin_of_its_own() -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(size=REFERENCE_ROWS)
    values[:4000] = 0.0
    bins = reference_bins_with_range(values)
    single = point_mass_bins(bins.fine_edges)
    zero_bin = int(np.searchsorted(bins.fine_edges, 0.0, side="right")) - 1
    assert single[zero_bin]
    counts = histogram(values, bins.fine_edges)
    assert ks_error_bound_on_edges(counts, counts, bins.fine_edges) <= 0.02


def test_out_of_range_shares_count_both_sides() -> None:
    bins = reference_bins_with_range(np.linspace(0.0, 1.0, 1000))
    counts = histogram(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0]), bins.fine_edges)
    assert out_of_range_shares(counts, bins) == pytest.approx((1 / 6, 2 / 6))


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=200))
def test_range_aware_bins_keep_every_value_and_the_reference_in_range(values: list[float]) -> None:
    reference = np.array(values)
    bins = reference_bins_with_range(reference)
    counts = histogram(reference, bins.fine_edges)
    assert counts.sum() == reference.size
    assert out_of_range_shares(counts, bins) == (0.0, 0.0)
    assert np.all(np.isin(bins.coarse_edges, bins.fine_edges))


def test_quantile_bins_still_miss_the_constant_feature_that_range_bins_see() -> None:
    old = reference_bins(np.zeros(100))
    moved = histogram(np.full(30, 5.0), old.fine_edges)
    assert psi_from_counts(histogram(np.zeros(100), old.fine_edges), moved) == 0.0
    new = reference_bins_with_range(np.zeros(100))
    assert out_of_range_shares(histogram(np.full(30, 5.0), new.fine_edges), new) == (0.0, 1.0)


# --- label drift with rare labels ----------------------------------------------------------


def test_chi_square_with_large_counts_is_scipys() -> None:
    reference, current = np.array([400, 300, 300]), np.array([90, 120, 90])
    test = chi_square_test_from_counts(reference, current)
    expected = stats.chi2_contingency(np.vstack((reference, current)), correction=False)
    assert test.method == "asymptotic chi-square"
    assert test.statistic == pytest.approx(expected.statistic)
    assert test.p_value == pytest.approx(expected.pvalue)


def test_monte_carlo_chi_square_agrees_with_the_asymptotic_one_on_large_counts() -> None:
    reference, current = np.array([400, 300, 300]), np.array([90, 120, 90])
    forced = chi_square_test_from_counts(reference, current, min_expected=1e9, resamples=4000)
    assert forced.method.startswith("Monte-Carlo")
    asymptotic = chi_square_test_from_counts(reference, current)
    assert forced.p_value == pytest.approx(asymptotic.p_value, abs=0.02)


def test_chi_square_with_rare_labels_keeps_its_size_at_50_items() -> None:
    rng = np.random.default_rng(9)
    shares = np.array([0.55, 0.3, 0.1, 0.02, 0.01, 0.01, 0.005, 0.005])
    reference = rng.multinomial(1000, shares, size=1000)
    current = rng.multinomial(50, shares, size=1000)
    p_values = np.array(
        [
            chi_square_test_from_counts(r, c, resamples=199, seed=k).p_value
            for k, (r, c) in enumerate(zip(reference, current, strict=True))
        ]
    )
    assert np.mean(p_values <= 0.05) <= 0.06


def test_chi_square_says_when_it_simulated() -> None:
    test = chi_square_test_from_counts(np.array([990, 10]), np.array([48, 2]))
    assert "Monte-Carlo" in test.method
    assert 0.0 < test.p_value <= 1.0


def test_sparse_bins_of_a_large_window_are_pooled_and_tested_as_scipy_tests_the_pooled_table():
    reference = np.array([50_000, 30_000, 3, 1, 0, 2])
    current = np.array([5_000, 3_100, 1, 0, 1, 0])
    test = chi_square_test_from_counts(reference, current)
    assert test.method.startswith("asymptotic chi-square after pooling")
    # The pooled rare bin (6 and 2) is still sparse, so it joins the smaller common bin.
    pooled = np.array([[50_000, 30_006], [5_000, 3_102]])
    expected = stats.chi2_contingency(pooled, correction=False)
    assert test.statistic == pytest.approx(expected.statistic)
    assert test.p_value == pytest.approx(expected.pvalue)
    assert test.dof == 1


def test_pooled_chi_square_keeps_its_size_on_a_large_window_with_rare_values():
    rng = np.random.default_rng(12)
    shares = np.array([0.6, 0.39, 0.005, 0.003, 0.001, 0.001])
    reference = rng.multinomial(20_000, shares, size=3000)
    current = rng.multinomial(600, shares, size=3000)
    p_values = np.array(
        [chi_square_test_from_counts(r, c).p_value for r, c in zip(reference, current, strict=True)]
    )
    assert np.mean(p_values <= 0.05) <= 0.06
