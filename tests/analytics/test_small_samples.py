"""Kappa intervals and headline lights behave on small and degenerate samples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.inter_rater import cohens_kappa as statsmodels_cohens_kappa

from analytics.stats.agreement import (
    KAPPA_ADJUSTED_METHOD,
    agreement,
    kappa_from_confusion,
    kappa_interval,
)
from analytics.stats.calibration import expected_calibration_error, reliability_bins
from analytics.stats.calibration_check import calibration_check_from_counts, calibration_light
from analytics.stats.lights import LIGHT_LABELS, light_from_bound

TRUE_KAPPA = 0.97

tables = st.integers(2, 4).flatmap(
    lambda k: st.lists(st.integers(0, 30), min_size=k * k, max_size=k * k).map(
        lambda cells: np.array(cells).reshape(k, k)
    )
)


def _cell_probabilities(n_classes: int, kappa: float) -> np.ndarray:
    """Return cell probabilities with uniform margins and this kappa."""
    chance = 1.0 / n_classes
    agreeing = kappa * (1.0 - chance) + chance
    cells = np.full((n_classes, n_classes), (1.0 - agreeing) / (n_classes * (n_classes - 1)))
    np.fill_diagonal(cells, agreeing / n_classes)
    return cells.ravel()


def _coverage(n_classes: int, n: int, runs: int = 1500) -> float:
    rng = np.random.default_rng(20261202 + n + n_classes)
    tables = rng.multinomial(n, _cell_probabilities(n_classes, TRUE_KAPPA), size=runs)
    hits = 0
    for table in tables.reshape(runs, n_classes, n_classes):
        interval = kappa_interval(table)
        hits += interval.low <= TRUE_KAPPA <= interval.high
    return hits / runs


@pytest.mark.parametrize("n_classes", [2, 10])
@pytest.mark.parametrize("n", [50, 200])
def test_kappa_interval_covers_a_high_kappa_on_small_windows(n_classes: int, n: int) -> None:
    assert _coverage(n_classes, n) >= 0.93


@pytest.mark.parametrize("n_classes", [2, 10])
def test_kappa_interval_keeps_nominal_coverage_on_large_windows(n_classes: int) -> None:
    assert 0.93 <= _coverage(n_classes, 1000) <= 0.975


def _rare_label_cells(prevalence: float, kappa: float) -> tuple[np.ndarray, float]:
    """Return two-label cell probabilities with one rare label, and their kappa."""
    margins = np.array([prevalence, 1.0 - prevalence])
    chance = float(margins @ margins)
    agreeing = kappa * (1.0 - chance) + chance
    cells = np.array([[margins[0], 0.0], [0.0, margins[1]]]) * agreeing
    cells[0, 1] = cells[1, 0] = (1.0 - agreeing) / 2.0
    rows, columns = cells.sum(axis=1), cells.sum(axis=0)
    expected = float(rows @ columns)
    return cells.ravel(), (float(np.trace(cells)) - expected) / (1.0 - expected)


@pytest.mark.parametrize("n", [50, 200])
def test_kappa_interval_covers_a_near_perfect_kappa_with_a_rare_label(n: int) -> None:
    cells, true_kappa = _rare_label_cells(0.2, 0.99)
    rng = np.random.default_rng(20261204 + n)
    runs = 1000
    tables = rng.multinomial(n, cells, size=runs).reshape(runs, 2, 2)
    hits = sum(
        interval.low <= true_kappa <= interval.high
        for interval in (kappa_interval(table) for table in tables)
    )
    assert hits / runs >= 0.93


def test_the_missing_light_reads_not_enough_data() -> None:
    assert LIGHT_LABELS["insufficient"] == "not enough data"


def test_a_perfect_ten_item_table_has_a_wide_kappa_interval() -> None:
    interval = kappa_interval([[6, 0], [0, 4]])
    assert interval.value == 1.0
    assert interval.high == 1.0
    assert 0.2 < interval.low < 0.8
    assert interval.method == KAPPA_ADJUSTED_METHOD


def test_a_one_item_table_gets_an_interval_at_least_as_wide_as_wilson() -> None:
    interval = kappa_interval([[1, 0], [0, 0]])
    wilson = agreement([0], [0])
    assert interval.high - interval.low >= wilson.high - wilson.low


def test_a_single_label_table_says_nothing_about_kappa() -> None:
    interval = kappa_interval([[5]])
    assert (interval.low, interval.high) == (-1.0, 1.0)


def test_a_large_window_of_one_label_still_says_nothing_about_kappa() -> None:
    table = np.zeros((10, 10), np.int64)
    table[3, 3] = 5000
    interval = kappa_interval(table)
    assert (interval.low, interval.high) == (-1.0, 1.0)


def test_an_empty_table_has_an_undefined_kappa_interval() -> None:
    assert np.isnan(kappa_interval([[0, 0], [0, 0]]).low)


@given(tables)
def test_kappa_interval_holds_the_observed_kappa_and_is_never_zero_width(table: np.ndarray) -> None:
    if table.sum() == 0:
        return
    interval = kappa_interval(table)
    assert -1.0 <= interval.low <= interval.value <= interval.high <= 1.0
    assert interval.high - interval.low > 0.0


@given(tables)
def test_kappa_interval_keeps_the_statsmodels_value_and_standard_error(table: np.ndarray) -> None:
    if table.sum() == 0 or np.count_nonzero(table.sum(axis=0)) < 2:
        return
    if np.count_nonzero(table.sum(axis=1)) < 2:
        return
    reference = statsmodels_cohens_kappa(table, return_results=True)
    interval = kappa_interval(table)
    assert interval.value == pytest.approx(reference.kappa, abs=1e-12)
    assert interval.standard_error == pytest.approx(reference.std_kappa, abs=1e-12)
    assert interval.standard_error == kappa_from_confusion(table).standard_error


def test_the_light_is_insufficient_for_one_judgment() -> None:
    one = agreement([3], [3])
    light = light_from_bound(lower=one.low, upper=one.high, good=0.9, bad=0.8, n=one.n, min_n=30)
    assert light == "insufficient"


@pytest.mark.parametrize(
    ("lower", "upper", "light"),
    [(0.92, 0.97, "green"), (0.85, 0.95, "amber"), (0.70, 0.79, "red"), (0.75, 0.85, "amber")],
)
def test_the_light_follows_the_whole_interval(lower: float, upper: float, light: str) -> None:
    assert light_from_bound(lower=lower, upper=upper, good=0.9, bad=0.8, n=500, min_n=30) == light


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.integers(0, 100))
def test_a_light_is_never_green_and_red_and_never_given_below_the_minimum(
    a: float, b: float, c: float, d: float, n: int
) -> None:
    lower, upper = sorted((a, b))
    bad, good = sorted((c, d))
    light = light_from_bound(lower=lower, upper=upper, good=good, bad=bad, n=n, min_n=30)
    if n < 30:
        assert light == "insufficient"
    elif light == "green":
        assert lower >= good
    elif light == "red":
        assert upper < bad


# --- calibration on small samples ------------------------------------------------------------


def _calibrated_window(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    confidence = rng.uniform(0.5, 1.0, size=n)
    return confidence, rng.random(n) < confidence


def test_a_calibrated_model_shows_the_ece_a_calibrated_model_would() -> None:
    rng = np.random.default_rng(21)
    confidence, correct = _calibrated_window(rng, 50)
    check = calibration_check_from_counts(reliability_bins(confidence, correct))
    assert check.value == expected_calibration_error(confidence, correct)
    assert check.low_if_calibrated <= check.value <= check.high_if_calibrated
    assert 0.05 < check.expected_if_calibrated < 0.15


def test_ece_light_is_insufficient_below_the_minimum_and_rarely_red_when_calibrated() -> None:
    rng = np.random.default_rng(22)
    few = calibration_check_from_counts(reliability_bins(*_calibrated_window(rng, 50)))
    assert calibration_light(check=few, good=0.05, bad=0.1) == "insufficient"
    lights = [
        calibration_light(
            check=calibration_check_from_counts(
                reliability_bins(*_calibrated_window(rng, 400)), resamples=400
            ),
            good=0.05,
            bad=0.1,
        )
        for _ in range(60)
    ]
    assert lights.count("red") == 0
    assert lights.count("green") >= 54


def test_ece_light_is_red_for_an_overconfident_model() -> None:
    rng = np.random.default_rng(23)
    confidence = rng.uniform(0.7, 1.0, size=1000)
    correct = rng.random(1000) < confidence - 0.2
    check = calibration_check_from_counts(reliability_bins(confidence, correct))
    assert check.excess_low > 0.1
    assert calibration_light(check=check, good=0.05, bad=0.1) == "red"


def test_an_empty_window_has_no_calibration_figures() -> None:
    check = calibration_check_from_counts(reliability_bins([], []))
    assert check.n == 0
    assert np.isnan(check.value)
