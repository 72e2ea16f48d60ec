"""Calibration, confidence histogram and coverage checked against scikit-learn and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve

from analytics.stats.agreement import wilson_interval
from analytics.stats.calibration import (
    ConfidenceBins,
    CoverageCurve,
    confidence_histogram,
    confidence_histogram_from_counts,
    coverage_bins,
    coverage_curve,
    coverage_curve_from_counts,
    expected_calibration_error,
    expected_calibration_error_from_counts,
    merge_confidence_bins,
    reliability,
    reliability_bins,
    reliability_from_counts,
)

GRID = np.arange(100) / 100  # 0, 0.01, ..., 0.99: the thresholds rollups answer exactly


def scored_items(
    rng: np.random.Generator, n: int, overconfidence: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return confidences and outcomes of a model right with probability conf - overconfidence."""
    confidence = rng.beta(5.0, 1.5, size=n)
    correct = rng.random(n) < np.clip(confidence - overconfidence, 0.0, 1.0)
    return confidence, correct


def with_edge_values(confidence: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return the confidences with some replaced by values exactly on (or next to) edges."""
    on_edges = np.concatenate(
        (
            np.linspace(0.0, 1.0, 11),  # scikit-learn's edges, 0.30000000000000004 among them
            np.arange(101) / 100,  # the coverage grid, 0.3 among them
            [0.3, 0.7, np.nextafter(0.5, 1.0), np.nextafter(0.5, 0.0), 1.0, 1.0, 0.0],
        )
    )
    result = confidence.copy()
    result[rng.choice(result.size, on_edges.size, replace=False)] = on_edges
    return result


@st.composite
def judged_items(draw: st.DrawFn, min_size: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Draw confidences (often exactly on a grid edge) and whether model and inspector agreed."""
    n = draw(st.integers(min_size, 60))
    value = st.one_of(
        st.floats(0.0, 1.0),
        st.integers(0, 100).map(lambda i: i / 100),
        st.integers(0, 10).map(lambda i: float(np.linspace(0.0, 1.0, 11)[i])),
    )
    confidence = np.array(draw(st.lists(value, min_size=n, max_size=n)), dtype=np.float64)
    agree = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    return confidence, agree


def assert_same_curve(left: CoverageCurve, right: CoverageCurve) -> None:
    for name in ("covered", "agreed", "coverage", "agreement_rate", "low", "high"):
        np.testing.assert_array_equal(getattr(left, name), getattr(right, name), err_msg=name)


# --- reliability -------------------------------------------------------------------------

RELIABILITY_CASES = [
    (seed, n, overconfidence, n_bins)
    for seed, (n, overconfidence, n_bins) in enumerate(
        [(200, 0.0, 10), (2000, 0.0, 10), (2000, 0.15, 10), (20_000, 0.05, 10), (5000, 0.1, 15)]
    )
]


@pytest.mark.parametrize(("seed", "n", "overconfidence", "n_bins"), RELIABILITY_CASES)
def test_reliability_matches_scikit_learn_calibration_curve(seed, n, overconfidence, n_bins):
    rng = np.random.default_rng(seed)
    confidence, correct = scored_items(rng, n, overconfidence)
    confidence = with_edge_values(confidence, rng)

    accuracy, mean_confidence = calibration_curve(
        correct, confidence, n_bins=n_bins, strategy="uniform"
    )
    result = reliability(confidence, correct, n_bins)

    filled = result.count > 0
    np.testing.assert_allclose(result.accuracy[filled], accuracy, rtol=0, atol=1e-15)
    np.testing.assert_allclose(result.mean_confidence[filled], mean_confidence, rtol=0, atol=1e-15)
    assert np.isnan(result.accuracy[~filled]).all()
    assert result.count.sum() == n


def test_a_confidence_on_an_interior_edge_falls_in_the_bin_below_as_in_scikit_learn():
    bins = reliability_bins([0.0, 0.5, np.nextafter(0.5, 1.0), 1.0], [True, True, False, True])

    np.testing.assert_array_equal(bins.count, [1, 0, 0, 0, 1, 1, 0, 0, 0, 1])
    assert bins.closed == "right"


def test_expected_calibration_error_weights_each_bin_gap_by_its_share():
    confidence = [0.05, 0.05, 0.95, 0.95, 0.95, 0.95]
    correct = [False, True, True, True, True, False]
    # bin 0: 2 items, accuracy 0.5 at 0.05; bin 9: 4 items, accuracy 0.75 at 0.95.
    expected = 2 / 6 * abs(0.5 - 0.05) + 4 / 6 * abs(0.75 - 0.95)

    assert expected_calibration_error(confidence, correct) == pytest.approx(expected, abs=1e-15)


def test_expected_calibration_error_is_the_weighted_gap_of_the_reliability_diagram():
    confidence, correct = scored_items(np.random.default_rng(10), 3000, 0.1)
    result = reliability(confidence, correct)
    filled = result.count > 0

    gaps = np.abs(result.accuracy[filled] - result.mean_confidence[filled])
    expected = float(np.sum(result.count[filled] * gaps) / result.count.sum())

    assert result.expected_calibration_error == pytest.approx(expected, abs=1e-12)


def test_a_calibrated_model_has_a_small_ece_and_an_overconfident_one_shows_its_gap():
    rng = np.random.default_rng(20240604)
    calibrated = expected_calibration_error(*scored_items(rng, 200_000))
    overconfident = expected_calibration_error(*scored_items(rng, 200_000, overconfidence=0.1))

    assert calibrated < 0.005
    assert overconfident == pytest.approx(0.1, abs=0.01)


def test_reliability_of_no_items_has_nan_ece_and_empty_bins():
    result = reliability([], [])

    assert math.isnan(result.expected_calibration_error)
    assert result.count.sum() == 0
    assert np.isnan(result.accuracy).all()


@given(judged_items())
def test_ece_lies_in_the_unit_interval(items):
    ece = expected_calibration_error(*items)

    assert math.isnan(ece) if items[0].size == 0 else 0.0 <= ece <= 1.0


@given(judged_items(min_size=1))
def test_reliability_from_counts_equals_reliability_from_raw_rows(items):
    direct = reliability(*items)
    from_counts = reliability_from_counts(reliability_bins(*items))

    np.testing.assert_array_equal(direct.count, from_counts.count)
    np.testing.assert_array_equal(direct.accuracy, from_counts.accuracy)
    assert direct.expected_calibration_error == from_counts.expected_calibration_error


@given(judged_items(), judged_items())
def test_two_days_of_bins_add_up_to_the_bins_of_both_days(first, second):
    both = tuple(np.concatenate(pair) for pair in zip(first, second, strict=True))

    for build in (reliability_bins, coverage_bins):
        added, direct = build(*first) + build(*second), build(*both)
        np.testing.assert_array_equal(added.count, direct.count)
        np.testing.assert_array_equal(added.correct, direct.correct)
        np.testing.assert_allclose(added.confidence_sum, direct.confidence_sum, atol=1e-12)


@given(judged_items(min_size=1), st.randoms(use_true_random=False))
def test_calibration_does_not_depend_on_row_order(items, random):
    confidence, agree = items
    permutation = np.array(random.sample(range(confidence.size), confidence.size))
    shuffled = (confidence[permutation], agree[permutation])

    assert expected_calibration_error(*shuffled) == pytest.approx(
        expected_calibration_error(*items), abs=1e-12
    )
    assert_same_curve(coverage_curve(*shuffled, GRID), coverage_curve(*items, GRID))


# --- confidence histogram ----------------------------------------------------------------


def test_confidence_histogram_matches_numpy_histogram_of_each_group():
    rng = np.random.default_rng(11)
    confidence, agree = scored_items(rng, 5000)
    confidence = with_edge_values(confidence, rng)

    result = confidence_histogram(confidence, agree)

    np.testing.assert_array_equal(result.edges, np.arange(21) / 20)
    np.testing.assert_array_equal(result.agreed, np.histogram(confidence[agree], result.edges)[0])
    np.testing.assert_array_equal(
        result.disagreed, np.histogram(confidence[~agree], result.edges)[0]
    )


@given(judged_items())
def test_histogram_from_a_hundred_rollup_bins_equals_the_twenty_bin_histogram(items):
    direct = confidence_histogram(*items, n_bins=20)
    merged = confidence_histogram_from_counts(merge_confidence_bins(coverage_bins(*items), 20))

    np.testing.assert_array_equal(merged.edges, direct.edges)
    np.testing.assert_array_equal(merged.agreed, direct.agreed)
    np.testing.assert_array_equal(merged.disagreed, direct.disagreed)
    assert direct.agreed.sum() + direct.disagreed.sum() == items[0].size


def test_bins_merge_only_into_a_whole_number_of_groups():
    with pytest.raises(ValueError, match="group"):
        merge_confidence_bins(coverage_bins([0.5], [True]), 30)


# --- coverage ------------------------------------------------------------------------------


def test_coverage_counts_items_at_or_above_each_threshold():
    confidence = [0.2, 0.5, 0.5, 0.9, 1.0]
    agree = [False, False, True, True, True]

    curve = coverage_curve(confidence, agree, [0.0, 0.5, 0.51, 1.0])

    np.testing.assert_array_equal(curve.covered, [5, 4, 2, 1])
    np.testing.assert_array_equal(curve.agreed, [3, 3, 2, 1])
    np.testing.assert_allclose(curve.coverage, [1.0, 0.8, 0.4, 0.2])
    np.testing.assert_allclose(curve.agreement_rate, [0.6, 0.75, 1.0, 1.0])


def test_coverage_intervals_are_wilson_intervals_of_the_covered_items():
    confidence, agree = scored_items(np.random.default_rng(12), 800)
    thresholds = [0.0, 0.5, 0.8, 0.95]

    curve = coverage_curve(confidence, agree, thresholds)

    for i in range(len(thresholds)):
        expected = wilson_interval(int(curve.agreed[i]), int(curve.covered[i]))
        assert (curve.low[i], curve.high[i]) == expected
        assert curve.low[i] <= curve.agreement_rate[i] <= curve.high[i]


def test_coverage_from_a_hundred_bins_equals_coverage_from_raw_rows_on_the_grid():
    rng = np.random.default_rng(13)
    confidence, agree = scored_items(rng, 50_000, 0.05)
    confidence = with_edge_values(confidence, rng)

    from_bins = coverage_curve_from_counts(coverage_bins(confidence, agree), GRID)

    assert_same_curve(from_bins, coverage_curve(confidence, agree, GRID))
    assert from_bins.covered[0] == confidence.size


@given(judged_items(), st.lists(st.integers(0, 99), min_size=1, max_size=10))
def test_coverage_from_bins_equals_coverage_from_raw_rows(items, grid_points):
    thresholds = np.array(grid_points) / 100

    from_bins = coverage_curve_from_counts(coverage_bins(*items), thresholds)

    assert_same_curve(from_bins, coverage_curve(*items, thresholds))


@given(judged_items(min_size=1), st.lists(st.floats(-0.5, 1.5), min_size=1, max_size=12))
def test_coverage_does_not_grow_with_the_threshold(items, thresholds):
    curve = coverage_curve(*items, np.sort(thresholds))

    assert np.all(np.diff(curve.coverage) <= 0)
    assert np.all(np.diff(curve.covered) <= 0)
    assert np.all(np.diff(curve.agreed) <= 0)
    assert np.all((curve.coverage >= 0) & (curve.coverage <= 1))


def test_a_threshold_between_bin_edges_cannot_be_read_from_counts():
    bins = coverage_bins([0.3, 0.6], [True, False])

    with pytest.raises(ValueError, match=r"0\.375"):
        coverage_curve_from_counts(bins, [0.5, 0.375])


def test_the_top_edge_cannot_be_read_from_counts_because_the_last_bin_is_closed():
    bins = coverage_bins([0.995, 1.0], [True, True])

    np.testing.assert_array_equal(coverage_curve([0.995, 1.0], [True, True], [1.0]).covered, [1])
    with pytest.raises(ValueError, match="does not start a bin"):
        coverage_curve_from_counts(bins, [1.0])


def test_coverage_is_not_read_from_bins_closed_on_the_right():
    with pytest.raises(ValueError, match="closed on the left"):
        coverage_curve_from_counts(reliability_bins([0.5], [True]), [0.5])


def test_coverage_above_every_confidence_has_no_rate_and_the_whole_interval():
    curve = coverage_curve([0.2, 0.4], [True, False], [0.9])

    assert curve.covered[0] == 0
    assert math.isnan(curve.agreement_rate[0])
    assert (curve.low[0], curve.high[0]) == (0.0, 1.0)


def test_coverage_of_no_items_is_nan():
    curve = coverage_curve([], [], [0.0, 0.5])

    assert np.isnan(curve.coverage).all()
    np.testing.assert_array_equal(curve.covered, [0, 0])


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [[1.2], [-0.1], [math.nan]])
def test_confidence_outside_the_unit_interval_is_rejected(confidence):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability(confidence, [True])


def test_outcomes_other_than_booleans_are_rejected():
    with pytest.raises(ValueError, match="0/1"):
        coverage_bins([0.5, 0.6], [1, 2])


def test_one_outcome_per_confidence_is_required():
    with pytest.raises(ValueError, match="one outcome per confidence"):
        reliability([0.5, 0.6], [True])


def test_more_correct_items_than_items_in_a_bin_is_rejected():
    with pytest.raises(ValueError, match="correct <= count"):
        ConfidenceBins(
            edges=[0.0, 1.0], count=[2], correct=[3], confidence_sum=[1.0], closed="left"
        )


def test_counts_over_different_bins_do_not_add_up():
    with pytest.raises(ValueError, match="same bins"):
        _ = coverage_bins([0.5], [True]) + reliability_bins([0.5], [True])


def test_stored_counts_cannot_be_changed_in_place():
    bins = coverage_bins([0.5], [True])

    with pytest.raises(ValueError, match="read-only"):
        bins.count[0] = 7


def test_expected_calibration_error_from_counts_needs_only_the_sums():
    bins = ConfidenceBins(
        edges=[0.0, 0.5, 1.0],
        count=[4, 6],
        correct=[1, 5],
        confidence_sum=[1.2, 4.5],
        closed="right",
    )

    expected = (abs(1 - 1.2) + abs(5 - 4.5)) / 10

    assert expected_calibration_error_from_counts(bins) == pytest.approx(expected, abs=1e-15)
