"""The latency percentile's interval matches SciPy's order-statistic interval."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analytics.stats.counts import LATENCY_EDGES_MS, log_histogram
from analytics.stats.quantile_interval import (
    percentile_interval_from_histogram,
    quantile_rank_interval,
)


@pytest.mark.parametrize("n", [20, 72, 100, 250, 1000])
def test_the_ranks_are_scipys_quantile_test_interval(n: int) -> None:
    values = np.arange(n, dtype=np.float64)
    scipy_interval = stats.quantile_test(values, q=0, p=0.95).confidence_interval(0.95)
    lower, upper = quantile_rank_interval(n, 0.95)
    assert values[lower - 1] == scipy_interval.low
    if upper > n:
        assert math.isnan(scipy_interval.high)
    else:
        assert values[upper - 1] == scipy_interval.high


def test_the_histogram_interval_holds_the_exact_one_within_a_bin() -> None:
    rng = np.random.default_rng(3)
    latencies = rng.lognormal(1.0, 0.8, 400)
    interval = percentile_interval_from_histogram(
        log_histogram(latencies, LATENCY_EDGES_MS), LATENCY_EDGES_MS, 95
    )
    exact = stats.quantile_test(latencies, q=0, p=0.95).confidence_interval(0.95)
    assert exact.low / 1.13 <= interval.low <= exact.low * 1.13
    assert exact.high / 1.13 <= interval.high <= exact.high * 1.13
    assert interval.low <= interval.value <= interval.high


def test_the_interval_covers_the_true_p95_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(4)
    truth = float(np.exp(1.0 + 0.8 * stats.norm.ppf(0.95)))
    runs = 400
    covered = 0
    for _ in range(runs):
        counts = log_histogram(rng.lognormal(1.0, 0.8, 150), LATENCY_EDGES_MS)
        interval = percentile_interval_from_histogram(counts, LATENCY_EDGES_MS, 95)
        covered += interval.low <= truth <= interval.high
    assert covered / runs >= 0.92


def test_few_values_have_no_upper_bound_and_none_no_figure() -> None:
    few = percentile_interval_from_histogram(
        log_histogram([5.0] * 10, LATENCY_EDGES_MS), LATENCY_EDGES_MS, 95
    )
    assert few.high == math.inf
    assert math.isnan(percentile_interval_from_histogram(np.zeros(160), LATENCY_EDGES_MS, 95).value)
