"""Anytime-valid bounds checked against the papers' formulas, references and simulation."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.special import betaln
from scipy.stats import beta as beta_distribution
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.proportion import proportion_confint

from analytics.stats.sequential import (
    beta_binomial_clears,
    beta_binomial_lower,
    beta_binomial_upper,
    empirical_bernstein_bounds,
    kappa_fixed_bounds,
    kappa_sequential_bounds,
    student_t_bounds,
    wilson_bounds,
)

counts = st.integers(min_value=1, max_value=5000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)
levels = st.sampled_from([0.8, 0.9, 0.95, 0.99])


def brute_force_mixture(p0: float, successes: int, n: int, a: float = 1.0, b: float = 1.0) -> float:
    """Return the one-sided beta-binomial mixture martingale at p0 by numerical integration."""

    def ratio(p: float) -> float:
        log_ratio = successes * math.log(p / p0) + (n - successes) * math.log((1 - p) / (1 - p0))
        return math.exp(log_ratio) * beta_distribution.pdf(p, a, b)

    integral, _ = quad(ratio, p0, 1.0, limit=200, points=[successes / n])
    return integral / beta_distribution.sf(p0, a, b)


def test_beta_binomial_lower_bound_is_where_the_mixture_martingale_reaches_one_over_alpha() -> None:
    for successes, n in [(18, 20), (45, 50), (170, 200), (30, 100)]:
        lower = float(beta_binomial_lower(successes=successes, n=n, confidence=0.95))
        assert math.isclose(brute_force_mixture(lower, successes, n), 20.0, rel_tol=1e-4)
        assert brute_force_mixture(lower - 0.01, successes, n) > 20.0
        assert brute_force_mixture(lower + 0.01, successes, n) < 20.0


def test_beta_binomial_mixture_matches_its_closed_form_with_the_whole_prior() -> None:
    # With p0 -> 0 the truncation vanishes and the mixture is Robbins' closed form
    # B(a+S, b+n-S) / (B(a, b) p0^S (1-p0)^(n-S)).
    successes, n, p0 = 7, 12, 1e-9
    closed = math.exp(
        betaln(1 + successes, 1 + n - successes) - betaln(1, 1)
        - successes * math.log(p0) - (n - successes) * math.log1p(-p0)
    )  # fmt: skip
    assert math.isclose(brute_force_mixture(p0, successes, n), closed, rel_tol=1e-3)


@given(counts, levels)
@settings(max_examples=60, deadline=None)
def test_proportion_bounds_hold_the_observed_rate_and_stay_finite(
    pair: tuple[int, int], confidence: float
) -> None:
    successes, n = pair
    lower = float(beta_binomial_lower(successes=successes, n=n, confidence=confidence))
    upper = float(beta_binomial_upper(successes=successes, n=n, confidence=confidence))
    wilson_low, wilson_high = wilson_bounds(successes=successes, n=n, confidence=confidence)
    assert math.isfinite(lower) and math.isfinite(upper)
    assert 0.0 <= lower <= successes / n <= upper <= 1.0
    # A confidence sequence costs width: it is never inside the fixed-sample interval.
    assert lower <= wilson_low + 1e-9 and upper >= wilson_high - 1e-9


@given(counts)
@settings(max_examples=40, deadline=None)
def test_proportion_bounds_widen_with_confidence(pair: tuple[int, int]) -> None:
    successes, n = pair
    lowers = beta_binomial_lower(successes=successes, n=n, confidence=0.9)
    assert float(beta_binomial_lower(successes=successes, n=n, confidence=0.99)) <= float(lowers)
    assert float(beta_binomial_upper(successes=successes, n=n, confidence=0.99)) >= float(
        beta_binomial_upper(successes=successes, n=n, confidence=0.9)
    )


@given(counts, st.floats(min_value=0.05, max_value=0.95))
@settings(max_examples=60, deadline=None)
def test_clearing_the_threshold_is_the_same_decision_as_the_lower_bound(
    pair: tuple[int, int], threshold: float
) -> None:
    successes, n = pair
    lower = float(beta_binomial_lower(successes=successes, n=n))
    cleared = bool(beta_binomial_clears(successes=successes, n=n, threshold=threshold))
    if abs(lower - threshold) > 1e-9:
        assert cleared == (lower >= threshold)


def test_beta_binomial_bound_ignores_the_order_of_the_items() -> None:
    rng = np.random.default_rng(5)
    outcomes = rng.random(400) < 0.9
    shuffled = rng.permutation(outcomes)
    first = beta_binomial_lower(successes=np.cumsum(outcomes)[-1], n=400)
    second = beta_binomial_lower(successes=np.cumsum(shuffled)[-1], n=400)
    assert float(first) == float(second)


def test_wilson_bounds_equal_statsmodels_at_the_one_sided_level() -> None:
    for successes, n in [(0, 10), (9, 10), (470, 500), (8_950, 10_000)]:
        expected = proportion_confint(successes, n, alpha=0.10, method="wilson")
        assert np.allclose(wilson_bounds(successes=successes, n=n, confidence=0.95), expected)


def test_kappa_point_equals_scikit_learn_and_lies_between_its_bounds() -> None:
    rng = np.random.default_rng(2)
    inspector = rng.integers(0, 10, 3000)
    model = np.where(rng.random(3000) < 0.9, inspector, rng.integers(0, 10, 3000))
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (inspector, model), 1)
    value, fixed_low, fixed_high = kappa_fixed_bounds(confusion=confusion)
    sequential_low, sequential_high = kappa_sequential_bounds(confusion=confusion)
    assert math.isclose(value, cohen_kappa_score(inspector, model), rel_tol=1e-12)
    assert sequential_low <= fixed_low <= value <= fixed_high <= sequential_high


def test_student_t_bounds_equal_statsmodels() -> None:
    from statsmodels.stats.weightstats import DescrStatsW

    values = np.random.default_rng(3).choice([-1.0, -0.5, 0.0, 0.5, 1.0], size=300)
    expected_low, _ = DescrStatsW(values).tconfint_mean(alpha=0.10)
    _, expected_high = DescrStatsW(values).tconfint_mean(alpha=0.10)
    assert np.allclose(student_t_bounds(values=values), (expected_low, expected_high))


def hand_empirical_bernstein_lower(values: list[float], alpha: float) -> list[float]:
    """Return the predictable plug-in EB lower bounds on [0, 1] by the paper's loop."""
    level = math.log(1 / alpha)
    total_bet = total_weighted = total_penalty = 0.0
    mean, variance, sum_x, sum_sq = 0.5, 0.25, 0.0, 0.0
    best, bounds = -math.inf, []
    for t, x in enumerate(values, start=1):
        bet = min(math.sqrt(2 * level / (variance * t * math.log(1 + t))), 0.5)
        total_penalty += 4 * (x - mean) ** 2 * (-math.log(1 - bet) - bet) / 4
        total_bet += bet
        total_weighted += bet * x
        best = max(best, (total_weighted - level - total_penalty) / total_bet)
        bounds.append(min(max(best, 0.0), 1.0))
        sum_x += x
        mean = (0.5 + sum_x) / (t + 1)
        sum_sq += (x - mean) ** 2
        variance = (0.25 + sum_sq) / (t + 1)
    return bounds


def test_empirical_bernstein_bound_equals_the_papers_formula_by_hand() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.5, 1.0, 0.75, 1.0]
    lower, _ = empirical_bernstein_bounds(values=values, low=0.0, high=1.0)
    assert np.allclose(lower, hand_empirical_bernstein_lower(values, 0.05))


def test_empirical_bernstein_upper_bound_mirrors_the_lower_one() -> None:
    values = np.random.default_rng(4).uniform(-1, 1, 500)
    _, upper = empirical_bernstein_bounds(values=values, low=-1.0, high=1.0)
    mirrored_lower, _ = empirical_bernstein_bounds(values=-values, low=-1.0, high=1.0)
    assert np.allclose(upper, -mirrored_lower)


@given(
    st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=1, max_size=300),
    levels,
)
@settings(max_examples=60, deadline=None)
def test_empirical_bernstein_bounds_are_ordered_finite_and_widen_with_confidence(
    values: list[float], confidence: float
) -> None:
    lower, upper = empirical_bernstein_bounds(
        values=values, low=-1.0, high=1.0, confidence=confidence
    )
    wider_lower, wider_upper = empirical_bernstein_bounds(
        values=values, low=-1.0, high=1.0, confidence=0.995
    )
    assert np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
    assert np.all(lower >= -1.0) and np.all(lower <= upper) and np.all(upper <= 1.0)
    assert np.all(wider_lower <= lower + 1e-12) and np.all(wider_upper >= upper - 1e-12)


def test_beta_binomial_sequence_covers_under_continuous_monitoring() -> None:
    rng = np.random.default_rng(7)
    streams, truth = 2000, 0.9
    n = np.arange(10, 3001, 10)
    successes = np.cumsum(rng.binomial(10, truth, size=(streams, n.size)), axis=1)
    low_misses = beta_binomial_clears(successes=successes, n=n, threshold=truth + 1e-9)
    high_misses = beta_binomial_clears(successes=n - successes, n=n, threshold=1 - truth + 1e-9)
    low_rate, high_rate = low_misses.any(axis=1).mean(), high_misses.any(axis=1).mean()
    print(
        f"beta-binomial CS miscoverage over 300 looks: lower {low_rate:.3f}, upper {high_rate:.3f}"
    )
    assert low_rate <= 0.05 and high_rate <= 0.05, (low_rate, high_rate)


def test_empirical_bernstein_sequence_covers_under_continuous_monitoring() -> None:
    rng = np.random.default_rng(8)
    values = rng.choice(
        [-1.0, -0.5, 0.0, 0.5, 1.0], p=[0.04, 0.06, 0.8, 0.06, 0.04], size=(2000, 3000)
    )
    lower, upper = empirical_bernstein_bounds(values=values, low=-1.0, high=1.0)
    low_rate = (lower > 0.0).any(axis=1).mean()
    high_rate = (upper < 0.0).any(axis=1).mean()
    print(
        f"empirical-Bernstein CS miscoverage at every item: lower {low_rate:.3f},"
        f" upper {high_rate:.3f}"
    )
    assert low_rate <= 0.05 and high_rate <= 0.05, (low_rate, high_rate)


def test_kappa_sequence_covers_under_repeated_looks() -> None:
    rng = np.random.default_rng(9)
    k, accuracy, streams = 4, 0.85, 150
    # The model copies the inspector with probability `accuracy`, else guesses uniformly:
    # kappa = accuracy exactly when both marginals are uniform.
    misses = 0
    for _ in range(streams):
        inspector = rng.integers(0, k, 3000)
        model = np.where(rng.random(3000) < accuracy, inspector, rng.integers(0, k, 3000))
        confusion = np.zeros((k, k), dtype=np.int64)
        missed = False
        for start in range(0, 3000, 300):
            np.add.at(confusion, (inspector[start : start + 300], model[start : start + 300]), 1)
            low, high = kappa_sequential_bounds(confusion=confusion)
            missed = missed or low > accuracy or high < accuracy
        misses += missed
    print(f"kappa union-bound CS miscoverage over 10 looks: {misses / streams:.3f}")
    assert misses / streams <= 0.05
