"""Drift statistics checked against SciPy, statsmodels, their own bounds and simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp
from statsmodels.stats.multitest import multipletests

from analytics.stats.binning import (
    ReferenceBins,
    feature_histograms,
    fine_bin_edges,
    histogram,
    merge_bins,
    reference_bin_edges,
    reference_bins,
    reference_bins_by_feature,
)
from analytics.stats.drift import (
    DriftThresholds,
    FeatureDrift,
    adjust_p_values,
    chi_square_from_counts,
    drift_level,
    feature_drift,
    feature_drift_from_counts,
    jensen_shannon_from_counts,
    ks_2samp_statistic,
    ks_binned_error_bound,
    ks_from_counts,
    psi,
    psi_from_counts,
    psi_rows,
)


def searchsorted_histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Return bin counts the obvious way: search every value among the interior edges."""
    index = np.searchsorted(edges[1:-1], values, side="right")
    return np.bincount(index, minlength=edges.size - 1)


def shifted_samples(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return a reference sample and a drifted current one, as features drift in practice."""
    rng = np.random.default_rng(seed)
    if name == "skewed and shifted":
        return rng.lognormal(0.0, 1.0, size=n), rng.lognormal(0.2, 1.1, size=n)
    reference = rng.normal(size=n)
    current = {
        "mean shift": lambda: rng.normal(0.3, 1.0, size=n),
        "small mean shift": lambda: rng.normal(0.05, 1.0, size=n),
        "wider": lambda: rng.normal(0.0, 1.5, size=n),
        "narrower": lambda: rng.normal(0.0, 0.7, size=n),
        "sensor noise": lambda: rng.normal(size=n) + rng.normal(0.0, 0.5, size=n),
        "new mode": lambda: np.where(
            rng.random(n) < 0.9, rng.normal(size=n), rng.normal(3.0, 0.3, size=n)
        ),
        "no drift": lambda: rng.normal(size=n),
    }[name]()
    return reference, current


DRIFTS = [
    "mean shift",
    "small mean shift",
    "wider",
    "narrower",
    "sensor noise",
    "new mode",
    "skewed and shifted",
]
DRIFTS_AND_NONE = [*DRIFTS, "no drift"]


@st.composite
def samples(draw: st.DrawFn, min_size: int = 1, max_size: int = 60) -> np.ndarray:
    """Draw a feature sample: continuous values, many ties, or both."""
    values = st.one_of(
        st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
        st.integers(-3, 3).map(float),
    )
    return np.array(draw(st.lists(values, min_size=min_size, max_size=max_size)))


@st.composite
def count_pairs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Draw two samples' counts over the same bins, each with at least one item."""
    k = draw(st.integers(1, 12))
    counts = st.lists(st.integers(0, 1000), min_size=k, max_size=k).filter(lambda c: sum(c) > 0)
    return np.array(draw(counts)), np.array(draw(counts))


# --- bins and counts ---------------------------------------------------------------------


def test_quantile_bins_hold_an_equal_share_of_a_continuous_reference():
    reference = np.random.default_rng(1).lognormal(size=10_007)

    counts = histogram(reference, reference_bin_edges(reference, 10))

    assert counts.size == 10
    assert counts.min() >= 1000 and counts.max() <= 1001


def test_outer_edges_are_infinite_so_far_values_still_fall_in_a_bin():
    edges = reference_bin_edges(np.arange(100.0), 4)

    assert edges[0] == -np.inf and edges[-1] == np.inf
    np.testing.assert_array_equal(histogram([-1e300, 1e300, np.inf, -np.inf], edges), [2, 0, 0, 2])


def test_a_constant_feature_gets_one_edge_and_two_bins():
    edges = reference_bin_edges(np.full(50, 7.0), 10)

    np.testing.assert_array_equal(edges, [-np.inf, 7.0, np.inf])
    np.testing.assert_array_equal(histogram([6.0, 7.0, 8.0], edges), [1, 2])


def test_tied_reference_values_give_each_edge_once():
    reference = np.repeat([0.0, 1.0, 2.0], [70, 20, 10])

    edges = reference_bin_edges(reference, 10)

    np.testing.assert_array_equal(edges, [-np.inf, 0.0, 1.0, 2.0, np.inf])


def test_a_value_on_an_edge_counts_in_the_bin_above_it():
    edges = np.array([-np.inf, 0.0, 1.0, np.inf])

    np.testing.assert_array_equal(histogram([0.0], edges), [0, 1, 0])
    np.testing.assert_array_equal(histogram([1.0], edges), [0, 0, 1])
    np.testing.assert_array_equal(histogram([np.nextafter(1.0, 0.0)], edges), [0, 1, 0])


@given(samples(), samples())
def test_histogram_equals_searching_every_value_among_the_edges(reference, values):
    edges = reference_bin_edges(reference, 7)

    np.testing.assert_array_equal(histogram(values, edges), searchsorted_histogram(values, edges))


@given(samples(), st.sampled_from([1, 2, 5, 10]), st.sampled_from([1, 2, 10]))
def test_every_coarse_edge_is_a_fine_edge(reference, n_coarse, factor):
    bins = reference_bins(reference, n_coarse, n_coarse * factor)

    assert np.isin(bins.coarse_edges, bins.fine_edges).all()
    np.testing.assert_array_equal(bins.coarse_edges, reference_bin_edges(reference, n_coarse))
    np.testing.assert_array_equal(
        bins.fine_edges, reference_bin_edges(reference, n_coarse * factor)
    )


def test_default_grids_are_ten_coarse_and_a_hundred_fine_bins():
    reference = np.random.default_rng(2).normal(size=5000)

    bins = reference_bins(reference)

    assert bins.coarse_edges.size == 11
    np.testing.assert_array_equal(bins.fine_edges, fine_bin_edges(reference))
    assert bins.fine_edges.size == 101


@given(samples(), samples())
def test_merged_fine_counts_equal_the_coarse_histogram(reference, current):
    bins = reference_bins(reference)

    merged = merge_bins(histogram(current, bins.fine_edges), bins.fine_edges, bins.coarse_edges)

    np.testing.assert_array_equal(merged, histogram(current, bins.coarse_edges))


def test_merging_needs_every_coarse_edge_among_the_fine_edges():
    fine = np.array([-np.inf, 0.0, 1.0, np.inf])
    with pytest.raises(ValueError, match="coarse edge"):
        merge_bins([1, 2, 3], fine, np.array([-np.inf, 0.5, np.inf]))


@given(samples(), st.lists(samples(min_size=0), min_size=1, max_size=4))
def test_daily_histograms_add_up_to_the_histogram_of_all_rows(reference, days):
    edges = fine_bin_edges(reference)

    daily_total = sum(histogram(day, edges) for day in days)

    np.testing.assert_array_equal(daily_total, histogram(np.concatenate(days), edges))


def test_feature_histograms_count_every_column_of_a_large_matrix():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(50_000, 12)) * rng.uniform(0.1, 10, size=12)
    current = np.round(rng.normal(0.2, 1.1, size=(200_000, 12)), 1)  # many ties on edges
    bins = reference_bins_by_feature(reference)

    counts = feature_histograms(current, bins)

    assert len(counts) == 12
    for j, feature_counts in enumerate(counts):
        expected = searchsorted_histogram(current[:, j], bins[j].fine_edges)
        np.testing.assert_array_equal(feature_counts, expected)


def test_nan_values_are_rejected_rather_than_binned_silently():
    with pytest.raises(ValueError, match="NaN"):
        histogram([1.0, math.nan], np.array([-np.inf, 0.0, np.inf]))


def test_edges_must_run_from_minus_to_plus_infinity():
    with pytest.raises(ValueError, match="outer edges"):
        histogram([1.0], np.array([0.0, 1.0, 2.0]))


# --- PSI ---------------------------------------------------------------------------------


def test_psi_is_the_sum_of_share_differences_times_log_ratios():
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)

    assert psi_from_counts([50, 50], [10, 30]) == pytest.approx(expected, abs=1e-15)


def test_an_empty_bin_is_floored_at_epsilon_instead_of_giving_infinity():
    expected = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + (1.0 - 0.5) * math.log(1.0 / 0.5)

    assert psi_from_counts([5, 5], [0, 8]) == pytest.approx(expected, rel=1e-12)
    assert psi_from_counts([5, 5], [0, 8], epsilon=1e-2) < psi_from_counts([5, 5], [0, 8])


def test_psi_from_raw_values_is_psi_of_reference_quantile_bin_counts():
    reference, current = shifted_samples("mean shift", 20_000, seed=4)
    edges = reference_bin_edges(reference, 10)

    expected = psi_from_counts(histogram(reference, edges), histogram(current, edges))

    assert psi(reference, current) == expected


def test_psi_grows_with_the_shift():
    rng = np.random.default_rng(5)
    reference = rng.normal(size=50_000)
    noise = rng.normal(size=50_000)

    values = [psi(reference, noise + shift) for shift in (0.0, 0.1, 0.3, 0.6)]

    assert values == sorted(values)
    assert values[0] < 0.01 and values[-1] > 0.25


def test_psi_of_an_empty_current_sample_is_nan():
    assert math.isnan(psi_from_counts([3, 4], [0, 0]))


@given(count_pairs())
def test_psi_is_never_negative(pair):
    reference, current = pair

    assert psi_from_counts(reference, current) >= 0.0


@given(samples(), st.integers(1, 5))
def test_psi_is_zero_on_identical_distributions(reference, copies):
    edges = reference_bin_edges(reference)
    counts = histogram(reference, edges)

    assert psi(reference, reference) == 0.0
    assert psi_from_counts(counts, counts * copies) == 0.0


@given(samples(), samples(), st.randoms(use_true_random=False))
def test_psi_does_not_depend_on_row_order(reference, current, random):
    shuffled = np.array(random.sample(list(current), current.size))

    assert psi(reference, shuffled) == psi(reference, current)


@given(st.lists(count_pairs(), min_size=1, max_size=6), st.integers(0, 4))
def test_psi_of_every_row_equals_psi_of_each_pair_padded_with_empty_bins(pairs, padding):
    width = max(reference.size for reference, _ in pairs) + padding
    reference_rows = np.zeros((len(pairs), width))
    current_rows = np.zeros((len(pairs), width))
    for j, (reference, current) in enumerate(pairs):
        reference_rows[j, : reference.size] = reference
        current_rows[j, : current.size] = current

    rows = psi_rows(reference_rows, current_rows)

    for value, (reference, current) in zip(rows, pairs, strict=True):
        assert value == pytest.approx(psi_from_counts(reference, current), rel=1e-12, abs=1e-15)


def test_psi_of_an_empty_row_is_nan():
    rows = psi_rows(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 0.0], [4.0, 3.0]]))
    assert math.isnan(rows[0]) and rows[1] > 0


# --- Kolmogorov-Smirnov ------------------------------------------------------------------

KS_CASES = [
    (n, m, name)
    for n, m in [(40, 55), (800, 800), (5000, 3000), (30_000, 20_000)]
    for name in DRIFTS
]


@pytest.mark.parametrize(("n", "m", "name"), KS_CASES)
def test_exact_ks_matches_scipy(n, m, name):
    reference, current = shifted_samples(name, max(n, m), seed=n + m)
    reference, current = reference[:n], current[:m]

    expected = ks_2samp(reference, current)

    assert ks_2samp_statistic(reference, current) == (expected.statistic, expected.pvalue)


def test_exact_ks_matches_scipy_on_tied_values():
    rng = np.random.default_rng(6)
    reference, current = rng.poisson(3.0, 700).astype(float), rng.poisson(3.3, 900).astype(float)

    expected = ks_2samp(reference, current)

    assert ks_2samp_statistic(reference, current) == (expected.statistic, expected.pvalue)


@pytest.mark.parametrize(("n", "m"), [(300, 500), (4000, 4000), (15_000, 25_000)])
def test_binned_ks_matches_scipy_asymptotic_when_every_value_is_an_edge(n, m):
    rng = np.random.default_rng(n)
    reference = rng.binomial(30, 0.5, size=n).astype(float)
    current = rng.binomial(30, 0.53, size=m).astype(float)
    edges = np.concatenate(([-np.inf], np.arange(31.0), [np.inf]))

    statistic, p_value = ks_from_counts(histogram(reference, edges), histogram(current, edges))
    expected = ks_2samp(reference, current, method="asymp")

    assert statistic == pytest.approx(expected.statistic, abs=1e-12)
    if n * m / (n + m) <= 10_000:  # the same kstwo distribution as SciPy
        assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    else:  # its limit, kstwobign, within the documented 0.003
        assert p_value == pytest.approx(expected.pvalue, abs=0.003)


# Measured with these seeds: the largest |D - D_binned| was 0.0017, against a bound of
# 0.0100 (the largest min-share of a bin, 1 / 100 for a continuous reference).
@pytest.mark.parametrize("n", [10_000, 100_000])
@pytest.mark.parametrize("name", DRIFTS_AND_NONE)
def test_ks_on_a_hundred_fine_bins_is_within_its_bound_of_the_exact_ks(n, name):
    reference, current = shifted_samples(name, n, seed=n)
    bins = reference_bins(reference)
    reference_counts = histogram(reference, bins.fine_edges)
    current_counts = histogram(current, bins.fine_edges)

    exact, _ = ks_2samp_statistic(reference, current)
    binned, _ = ks_from_counts(reference_counts, current_counts)
    bound = ks_binned_error_bound(reference_counts, current_counts)

    assert binned <= exact <= binned + bound
    assert bound == pytest.approx(0.01, abs=1e-4)
    assert exact - binned <= 0.005


@given(samples(min_size=1), samples(min_size=1), samples(min_size=1))
def test_binned_ks_is_at_most_the_exact_ks_and_at_least_it_minus_the_bound(
    reference, current, edge_source
):
    edges = reference_bin_edges(edge_source, 5)
    reference_counts, current_counts = histogram(reference, edges), histogram(current, edges)

    with np.errstate(divide="ignore"):  # SciPy divides by en = 0 for one value a side
        exact, exact_p = ks_2samp(reference, current, method="asymp")
    binned, binned_p = ks_from_counts(reference_counts, current_counts)
    bound = ks_binned_error_bound(reference_counts, current_counts)

    assert binned <= exact + 1e-12
    assert exact <= binned + bound + 1e-12
    assert 0.0 <= binned_p <= 1.0
    if not math.isnan(exact_p):  # SciPy has no p-value for one value a side
        assert binned_p >= exact_p - 1e-12


def test_binned_ks_of_identical_counts_is_zero_with_p_value_one():
    assert ks_from_counts([5, 7, 9], [10, 14, 18]) == (0.0, 1.0)


# --- Jensen-Shannon ----------------------------------------------------------------------


@pytest.mark.parametrize("name", DRIFTS_AND_NONE)
def test_jensen_shannon_matches_scipy(name):
    reference, current = shifted_samples(name, 5000, seed=7)
    edges = fine_bin_edges(reference)
    reference_counts, current_counts = histogram(reference, edges), histogram(current, edges)

    expected = jensenshannon(reference_counts, current_counts, base=2)

    assert jensen_shannon_from_counts(reference_counts, current_counts) == pytest.approx(
        expected, abs=1e-12
    )


def test_jensen_shannon_is_one_on_disjoint_bins():
    assert jensen_shannon_from_counts([4, 0], [0, 9]) == pytest.approx(1.0, abs=1e-15)


@given(count_pairs())
def test_jensen_shannon_lies_in_the_unit_interval_and_is_symmetric(pair):
    reference, current = pair
    forward = jensen_shannon_from_counts(reference, current)

    assert 0.0 <= forward <= 1.0
    assert forward == pytest.approx(jensen_shannon_from_counts(current, reference), abs=1e-12)
    assert forward == pytest.approx(jensenshannon(reference, current, base=2), abs=1e-9)


# --- chi-square --------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_chi_square_matches_scipy_without_continuity_correction(k):
    rng = np.random.default_rng(k)
    reference = rng.multinomial(2000, rng.dirichlet(np.ones(k)))
    current = rng.multinomial(700, rng.dirichlet(np.ones(k)))

    expected = chi2_contingency(np.vstack((reference, current)), correction=False)

    statistic, p_value, dof = chi_square_from_counts(reference, current)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert dof == expected.dof == k - 1


def test_scipy_corrects_only_two_by_two_tables_and_this_never_does():
    three = np.array([[30, 50, 20], [40, 35, 25]])
    two = np.array([[30, 70], [45, 55]])

    assert chi2_contingency(three).statistic == chi2_contingency(three, correction=False).statistic
    assert chi_square_from_counts(*two)[0] == pytest.approx(
        chi2_contingency(two, correction=False).statistic, rel=1e-12
    )
    assert chi_square_from_counts(*two)[0] > chi2_contingency(two).statistic


def test_labels_empty_on_both_sides_are_dropped():
    with_empty = chi_square_from_counts([10, 0, 30, 0], [12, 0, 20, 0])

    assert with_empty == chi_square_from_counts([10, 30], [12, 20])
    assert with_empty[2] == 1


def test_one_label_seen_gives_no_evidence_of_drift():
    assert chi_square_from_counts([10, 0], [3, 0]) == (0.0, 1.0, 0)


@given(count_pairs())
def test_chi_square_is_never_negative(pair):
    statistic, p_value, dof = chi_square_from_counts(*pair)

    assert statistic >= 0.0
    assert 0.0 <= p_value <= 1.0
    assert dof >= 0


# --- multiple testing --------------------------------------------------------------------

P_VALUE_SETS = {
    "spread": np.random.default_rng(8).uniform(size=64),
    "a few small": np.array([1e-12, 0.001, 0.01, 0.02, 0.04, 0.3, 0.5, 0.9]),
    "ties": np.array([0.01, 0.01, 0.03, 0.03, 0.03, 0.5]),
    "zeros and ones": np.array([0.0, 0.0, 1.0, 0.2, 1.0]),
    "one test": np.array([0.03]),
}


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
@pytest.mark.parametrize("p_values", P_VALUE_SETS.values(), ids=P_VALUE_SETS.keys())
def test_adjusted_p_values_match_statsmodels(p_values, method):
    expected = multipletests(p_values, method=method)[1]

    np.testing.assert_allclose(adjust_p_values(p_values, method), expected, rtol=1e-12, atol=0)


# statsmodels' Holm takes 30 ms a call here; fewer examples keep the file fast.
@settings(max_examples=25)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40), st.sampled_from(["holm", "fdr_bh"]))
def test_adjusted_p_values_match_statsmodels_on_any_p_values(p_values, method):
    expected = multipletests(np.array(p_values), method=method)[1]

    # Subnormal p-values (below 2.2e-308) carry too few bits for a relative tolerance:
    # 5e-324 * 17 / 2 rounds to 4e-323 or 4.4e-323 depending on the order of operations.
    np.testing.assert_allclose(
        adjust_p_values(p_values, method), expected, rtol=1e-12, atol=np.finfo(float).tiny
    )


def test_the_default_correction_is_holm():
    p_values = P_VALUE_SETS["a few small"]

    np.testing.assert_array_equal(adjust_p_values(p_values), adjust_p_values(p_values, "holm"))
    assert DriftThresholds().correction == "holm"


def test_unknown_correction_is_rejected():
    with pytest.raises(ValueError, match="bonferroni"):
        adjust_p_values([0.1], "bonferroni")  # type: ignore[arg-type]


# --- per-feature report ------------------------------------------------------------------


def drifting_features(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return reference and current rows: feature 0 shifted a lot, 1 a little, 2-5 not."""
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(n, 6))
    current = rng.normal(size=(n, 6))
    current[:, 0] += 0.8
    current[:, 1] += 0.25
    return reference, current


def test_report_from_daily_rollups_equals_report_from_raw_rows():
    reference, current = drifting_features(30_000, seed=9)
    bins = reference_bins_by_feature(reference)
    days = np.array_split(current, 3)

    rollup = [sum(day) for day in zip(*(feature_histograms(d, bins) for d in days), strict=True)]
    from_rollups = feature_drift_from_counts(feature_histograms(reference, bins), rollup, bins)

    assert from_rollups == feature_drift(reference, current)


def test_report_psi_is_quantile_binned_psi_of_the_raw_column():
    reference, current = drifting_features(20_000, seed=10)

    report = feature_drift(reference, current)

    for j, row in enumerate(report):
        assert row.psi == pytest.approx(psi(reference[:, j], current[:, j]), abs=1e-15)


def test_report_levels_follow_the_size_of_the_shift():
    reference, current = drifting_features(50_000, seed=11)

    report = feature_drift(reference, current)

    assert [row.index for row in report] == list(range(6))
    assert [row.level for row in report] == ["major", "moderate", *["none"] * 4]
    assert [row.drifted for row in report] == [True, True, *[False] * 4]


def test_a_negligible_shift_at_a_million_rows_is_significant_but_not_drift():
    rng = np.random.default_rng(12)
    reference = rng.normal(size=(1_000_000, 1))
    current = rng.normal(0.02, 1.0, size=(1_000_000, 1))

    (row,) = feature_drift(reference, current)

    assert row.ks_p_adjusted < 1e-6
    assert row.ks_statistic < DriftThresholds().ks_min_statistic
    assert row.level == "none"


def test_ks_p_values_are_adjusted_across_features_with_the_chosen_correction():
    reference, current = drifting_features(3000, seed=13)

    for correction in ("holm", "fdr_bh"):
        report = feature_drift(reference, current, DriftThresholds(correction=correction))
        raw = [row.ks_p_value for row in report]
        expected = multipletests(raw, method=correction)[1]
        np.testing.assert_allclose([row.ks_p_adjusted for row in report], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("psi_value", "statistic", "p_adjusted", "level"),
    [
        (0.30, 0.0, 1.0, "major"),
        (0.25, 0.0, 1.0, "major"),
        (0.10, 0.0, 1.0, "moderate"),
        (0.05, 0.06, 0.01, "moderate"),
        (0.05, 0.04, 1e-9, "none"),  # significant, but too small to act on
        (0.05, 0.20, 0.06, "none"),  # large, but not significant
        (0.00, 0.00, 1.0, "none"),
    ],
)
def test_drift_level_thresholds(psi_value, statistic, p_adjusted, level):
    assert drift_level(psi_value, statistic, p_adjusted, DriftThresholds()) == level


def test_feature_drift_is_a_frozen_record():
    row = FeatureDrift(0, 0.0, 0.0, 1.0, 1.0, 0.0, "none")

    with pytest.raises(AttributeError):
        row.psi = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "limits",
    [
        {"psi_moderate": 0.3, "psi_major": 0.2},
        {"ks_alpha": 0.0},
        {"ks_min_statistic": 1.5},
        {"correction": "bonferroni"},
    ],
)
def test_inconsistent_thresholds_are_rejected(limits):
    with pytest.raises(ValueError):
        DriftThresholds(**limits)


def test_a_report_needs_counts_and_bins_for_every_feature():
    bins = [ReferenceBins(np.array([-np.inf, np.inf]), np.array([-np.inf, np.inf]))]
    with pytest.raises(ValueError, match="every feature"):
        feature_drift_from_counts([np.array([1])], [], bins)
    with pytest.raises(ValueError, match="current rows"):
        feature_drift_from_counts([np.array([1])], [np.array([0])], bins)


@given(samples(min_size=2, max_size=40), st.randoms(use_true_random=False))
def test_report_does_not_depend_on_row_order(column, random):
    reference = np.column_stack((column, column[::-1] * 2.0))
    current = reference + 0.5
    permutation = np.array(random.sample(range(column.size), column.size))

    assert feature_drift(reference, current[permutation]) == feature_drift(reference, current)
    assert feature_drift(reference[permutation], current) == feature_drift(reference, current)


# --- behaviour under no drift, by simulation ---------------------------------------------

REPETITIONS = 500
FEATURES = 16


def test_no_drift_flags_a_feature_in_at_most_alpha_of_reports():
    rng = np.random.default_rng(20240603)
    any_flagged = 0
    rejections = 0
    for _ in range(REPETITIONS):
        reference = rng.normal(size=(1000, FEATURES))
        current = rng.normal(size=(1000, FEATURES))
        report = feature_drift(reference, current)
        any_flagged += any(row.ks_p_adjusted < 0.05 for row in report)
        rejections += sum(row.ks_p_value < 0.05 for row in report)

    # Holm keeps the family-wise error at or below alpha; the binned test is conservative
    # (D_binned <= D) but not uselessly so.
    assert any_flagged / REPETITIONS <= 0.05
    assert 0.02 <= rejections / (REPETITIONS * FEATURES) <= 0.05
