"""A distribution-free confidence interval of a percentile, read off a log histogram.

Plain numpy and SciPy: no Django import. Latency is judged on its 95th percentile, and a
p95 of 40 items says little; the interval says how little, with no assumption on the
shape of the latency distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from analytics.stats.counts import percentile_from_histogram

QUANTILE_INTERVAL_METHOD = (
    "95% distribution-free interval of the percentile between two order statistics "
    "(binomial ranks, as scipy.stats.quantile_test), read off the histogram"
)


def quantile_rank_interval(n: int, q: float, confidence: float = 0.95) -> tuple[int, int]:
    """Return 1-based ranks l and u with P(X_(l) <= q-quantile <= X_(u)) >= confidence.

    The number of values below the q-quantile is Binomial(n, q), so l is its
    (1 - confidence) / 2 quantile and u one more than its (1 + confidence) / 2 quantile
    (Thompson 1936; Conover 1999, "Practical Nonparametric Statistics", section 3.2):
    the interval of ``scipy.stats.quantile_test(...).confidence_interval``. l = 0 means
    no lower bound and u = n + 1 no upper bound at this n.
    """
    if n < 1:
        raise ValueError(f"need at least one value, got n={n}")
    if not 0.0 < q < 1.0 or not 0.0 < confidence < 1.0:
        raise ValueError(
            f"q and confidence must lie strictly between 0 and 1, got {q}, {confidence}"
        )
    tail = (1.0 - confidence) / 2.0
    lower = int(stats.binom.ppf(tail, n, q))
    upper = int(stats.binom.ppf(1.0 - tail, n, q)) + 1
    return lower, upper


@dataclass(frozen=True)
class PercentileInterval:
    """A percentile read off a histogram with its distribution-free interval."""

    value: float
    low: float
    high: float
    n: int
    method: str = QUANTILE_INTERVAL_METHOD


def percentile_interval_from_histogram(
    counts: npt.ArrayLike, edges: np.ndarray, q: float, confidence: float = 0.95
) -> PercentileInterval:
    """Return the q-th percentile (0-100) of a log histogram and its interval.

    The bounds are the order statistics of ``quantile_rank_interval`` read off the
    histogram like the percentile itself (within one bin, 12%, of the exact ones). Below
    the sample size that has an upper rank the upper bound is +inf; nan with no values.
    """
    table = np.asarray(counts, dtype=np.float64)
    n = int(table.sum())
    if n == 0:
        return PercentileInterval(math.nan, math.nan, math.nan, 0)
    lower, upper = quantile_rank_interval(n, q / 100.0, confidence)
    low = 0.0 if lower < 1 else percentile_from_histogram(table, edges, 100.0 * lower / n)
    high = math.inf if upper > n else percentile_from_histogram(table, edges, 100.0 * upper / n)
    return PercentileInterval(
        value=percentile_from_histogram(table, edges, q), low=low, high=high, n=n
    )
