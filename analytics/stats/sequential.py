"""Anytime-valid bounds for the promotion gate, and the fixed-sample intervals shown beside them.

A confidence sequence (CS) holds at every sample size at once: the chance that it
ever excludes the truth, however often it is looked at, is at most alpha. A
fixed-sample interval looked at a hundred times is not (FACTS: the peeking 95% Wilson
gate promotes a model exactly at the line in 31.7% of streams). Every bound here is
one-sided at level ``confidence``; the lower bound decides "pass" and the upper bound
decides "fail", each with its own error rate alpha = 1 - confidence.

Plain numpy and SciPy: no Django import.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import betaincc, betaln, ndtri
from scipy.stats import t as student_t

# The one place the gate reaches the existing agreement statistics; the module may move
# to analytics.stats.agreement, and only this line then changes.
from analytics.stats.agreement import kappa_from_confusion, wilson_interval

# Beta(1, 1): a uniform mixing prior, so no agreement level is favoured a priori.
DEFAULT_PRIOR = (1.0, 1.0)
BISECTION_STEPS = 48

BETA_BINOMIAL_METHOD = (
    "beta-binomial mixture confidence sequence (Robbins 1970; Howard et al. 2021)"
)
EMPIRICAL_BERNSTEIN_METHOD = (
    "predictable plug-in empirical-Bernstein confidence sequence (Waudby-Smith & Ramdas 2023)"
)
KAPPA_SEQUENTIAL_METHOD = (
    "worst case of kappa over beta-binomial confidence sequences for observed agreement"
    " and marginal shares, union bound (Howard et al. 2021)"
)
WILSON_METHOD = "one-sided Wilson score interval (Wilson 1927), fixed sample"
STUDENT_T_METHOD = "one-sided Student t interval of the paired differences, fixed sample"
KAPPA_FIXED_METHOD = (
    "one-sided analytic kappa interval (Fleiss, Cohen & Everitt 1969), fixed sample"
)


def _alpha(confidence: float) -> float:
    """Return 1 - confidence, refusing levels outside (0, 1)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return 1.0 - confidence


def _log_truncated_mixture(
    p0: np.ndarray, successes: np.ndarray, n: np.ndarray, a: float, b: float
) -> np.ndarray:
    """Return log of the Beta(a, b) mixture of likelihood ratios over p > p0 against p0."""
    failures = n - successes
    with np.errstate(divide="ignore", invalid="ignore"):
        posterior_tail = np.log(betaincc(a + successes, b + failures, p0))
        prior_tail = np.log(betaincc(a, b, p0))
        null = successes * np.log(p0) + failures * np.log1p(-p0)
    return betaln(a + successes, b + failures) - betaln(a, b) + posterior_tail - prior_tail - null


def beta_binomial_lower(
    *,
    successes: npt.ArrayLike,
    n: npt.ArrayLike,
    confidence: float = 0.95,
    prior: tuple[float, float] = DEFAULT_PRIOR,
) -> np.ndarray:
    """Return the one-sided anytime-valid lower bound of a proportion from (successes, n).

    The conjugate mixture martingale of Robbins (1970), "Statistical methods related
    to the law of the iterated logarithm", Ann. Math. Stat. 41:1397-1409, as the
    beta-binomial boundary of Howard, Ramdas, McAuliffe & Sekhon (2021), "Time-uniform,
    nonparametric, nonasymptotic confidence sequences", Ann. Stat. 49:1055-1080,
    Section 3 (conjugate mixtures). For each p0 the likelihood ratio of p against p0,
    mixed over the prior restricted to p > p0 (the one-sided alternative),

        M_n(p0) = B(a+S, b+n-S) I^c_{p0}(a+S, b+n-S) / (B(a, b) I^c_{p0}(a, b))
                  / (p0^S (1-p0)^(n-S)),

    is a nonnegative martingale with mean 1 under p0, so by Ville's inequality it ever
    reaches 1/alpha with probability at most alpha. The bound is the smallest p0 below
    the observed rate with M_n(p0) < 1/alpha, found by bisection in log space. It
    depends only on (S, n), so it is invariant to the order of the items. Vectorised:
    successes and n broadcast against each other.
    """
    alpha = _alpha(confidence)
    a, b = prior
    s_array, n_array = np.broadcast_arrays(
        np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    )
    if np.any(n_array < 0) or np.any(s_array < 0) or np.any(s_array > n_array):
        raise ValueError("need 0 <= successes <= n")
    threshold = math.log(1.0 / alpha)
    safe_n = np.maximum(n_array, 1.0)
    # M_n(p0) is infinite at p0 = 0 (when S > 0) and at most 1 at the observed rate,
    # where every likelihood ratio of the mixture is at most 1: the crossing lies between.
    low = np.zeros_like(s_array)
    high = s_array / safe_n
    for _ in range(BISECTION_STEPS):
        middle = (low + high) / 2.0
        excluded = _log_truncated_mixture(middle, s_array, n_array, a, b) >= threshold
        low = np.where(excluded, middle, low)
        high = np.where(excluded, high, middle)
    # ``low`` is always excluded (or 0), so it is the conservative end of the bracket.
    return np.where((s_array == 0) | (n_array == 0), 0.0, low)


def beta_binomial_upper(
    *,
    successes: npt.ArrayLike,
    n: npt.ArrayLike,
    confidence: float = 0.95,
    prior: tuple[float, float] = DEFAULT_PRIOR,
) -> np.ndarray:
    """Return the one-sided anytime-valid upper bound of a proportion from (successes, n).

    The mirror image of ``beta_binomial_lower`` (Howard et al. 2021): the lower bound
    of the failure rate, with the prior mirrored too.
    """
    s_array, n_array = np.broadcast_arrays(
        np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    )
    failures_lower = beta_binomial_lower(
        successes=n_array - s_array, n=n_array, confidence=confidence, prior=prior[::-1]
    )
    return 1.0 - failures_lower


def _empirical_bernstein_terms(
    unit: np.ndarray, log_inverse_alpha: float, cap: float, horizon: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return running sum(lambda), sum(lambda * x) and sum(v * psi(lambda)) along the last axis."""
    t = np.arange(1, unit.shape[-1] + 1, dtype=np.float64)
    running_mean = (0.5 + np.cumsum(unit, axis=-1)) / (t + 1.0)
    start = np.full((*unit.shape[:-1], 1), 0.5)
    previous_mean = np.concatenate((start, running_mean[..., :-1]), axis=-1)
    running_variance = (0.25 + np.cumsum((unit - running_mean) ** 2, axis=-1)) / (t + 1.0)
    previous_variance = np.concatenate((start / 2.0, running_variance[..., :-1]), axis=-1)
    spread = t * np.log1p(t) if horizon is None else np.full_like(t, float(horizon))
    bet = np.minimum(np.sqrt(2.0 * log_inverse_alpha / (previous_variance * spread)), cap)
    variance_proxy = 4.0 * (unit - previous_mean) ** 2
    psi = (-np.log1p(-bet) - bet) / 4.0
    return (
        np.cumsum(bet, axis=-1),
        np.cumsum(bet * unit, axis=-1),
        np.cumsum(variance_proxy * psi, axis=-1),
    )


def empirical_bernstein_bounds(
    *,
    values: npt.ArrayLike,
    low: float,
    high: float,
    confidence: float = 0.95,
    cap: float = 0.5,
    horizon: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return one-sided anytime-valid lower and upper bounds of the mean after each value.

    The predictable plug-in empirical-Bernstein confidence sequence of Waudby-Smith &
    Ramdas (2023), "Estimating means of bounded random variables by betting", JRSS-B
    86:1-27, Theorem 2, one-sided (log(1/alpha) in place of log(2/alpha)). Values in
    [low, high] are rescaled to [0, 1]; then with running mean and variance
    mu_t = (1/2 + sum x) / (t + 1), s2_t = (1/4 + sum (x - mu)^2) / (t + 1),
    bets lambda_t = min(sqrt(2 log(1/alpha) / (s2_{t-1} t log(1 + t))), cap),
    v_t = 4 (x_t - mu_{t-1})^2 and psi(l) = (-log(1 - l) - l) / 4, the bounds are

        sum(lambda x) / sum(lambda) -+ (log(1/alpha) + sum(v psi(lambda))) / sum(lambda).

    The width follows the observed variance, not the worst case of the range. Each
    bound is intersected with its running best (valid for a CS) and clipped to the
    range. With ``horizon`` the bets use a fixed n in place of t log(1 + t), which
    makes the bound tightest near that many values; bets that depend only on the past
    keep it valid whatever they are. O(n) with cumulative sums along the last axis,
    which is time (values in the order they arrived); leading axes are independent
    streams.
    """
    alpha = _alpha(confidence)
    if not high > low:
        raise ValueError(f"need high > low, got [{low}, {high}]")
    array = np.asarray(values, dtype=np.float64)
    if array.ndim < 1:
        raise ValueError("values must have a time axis")
    if array.size and (array.min() < low or array.max() > high):
        raise ValueError(f"values must lie in [{low}, {high}]")
    if array.size == 0:
        return np.empty(array.shape), np.empty(array.shape)
    span = high - low
    log_inverse_alpha = math.log(1.0 / alpha)
    unit = (array - low) / span
    bets, weighted, penalty = _empirical_bernstein_terms(unit, log_inverse_alpha, cap, horizon)
    centre = weighted / bets
    margin = (log_inverse_alpha + penalty) / bets
    lower = np.clip(np.maximum.accumulate(centre - margin, axis=-1), 0.0, 1.0)
    upper = np.clip(np.minimum.accumulate(centre + margin, axis=-1), 0.0, 1.0)
    return low + span * lower, low + span * upper


def kappa_sequential_bounds(
    *, confusion: npt.ArrayLike, confidence: float = 0.95
) -> tuple[float, float]:
    """Return conservative one-sided anytime-valid lower and upper bounds of Cohen's kappa.

    Kappa = (p_o - p_e) / (1 - p_e) falls as chance agreement p_e = sum_k r_k c_k rises
    and rises with the observed agreement p_o. With a union bound, alpha is split in
    half for p_o and half over the 2K marginal shares r_k (rows) and c_k (columns),
    each bounded by the beta-binomial confidence sequence (Howard et al. 2021). On the
    event that all of them hold, p_e <= min(sum r_k^U c_k^U, max_k c_k^U, max_k r_k^U)
    (the last two because the shares sum to one) and p_e >= sum r_k^L c_k^L, so kappa
    lies between its values at those corners. Conservative by construction; the
    price of the union bound is a slightly wider bound than either part alone.
    """
    alpha = _alpha(confidence)
    table = np.asarray(confusion, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {table.shape}")
    n = float(table.sum())
    if n == 0:
        return -1.0, 1.0
    k = table.shape[0]
    agreement_level = 1.0 - alpha / 2.0
    share_level = 1.0 - alpha / (4.0 * k)
    agreed = float(np.trace(table))
    agreement_low = float(beta_binomial_lower(successes=agreed, n=n, confidence=agreement_level))
    agreement_high = float(beta_binomial_upper(successes=agreed, n=n, confidence=agreement_level))
    margins = np.concatenate((table.sum(axis=1), table.sum(axis=0)))
    share_low = beta_binomial_lower(successes=margins, n=n, confidence=share_level)
    share_high = beta_binomial_upper(successes=margins, n=n, confidence=share_level)
    rows_high, columns_high = share_high[:k], share_high[k:]
    chance_high = min(
        float(rows_high @ columns_high), float(rows_high.max()), float(columns_high.max()), 1.0
    )
    chance_low = float(share_low[:k] @ share_low[k:])
    return _kappa_at(agreement_low, chance_high), _kappa_at(agreement_high, chance_low)


def _kappa_at(observed: float, chance: float) -> float:
    """Return kappa for given observed and chance agreement, within [-1, 1]."""
    if chance >= 1.0:
        return 1.0 if observed >= 1.0 else -1.0
    return float(np.clip((observed - chance) / (1.0 - chance), -1.0, 1.0))


def wilson_bounds(*, successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return one-sided fixed-sample Wilson bounds (Wilson 1927) of a proportion.

    Each end of the two-sided Wilson interval at level 2 * confidence - 1 is a
    one-sided bound at level ``confidence``.
    """
    _alpha(confidence)
    return wilson_interval(successes, n, confidence=2.0 * confidence - 1.0)


def student_t_bounds(*, values: npt.ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """Return one-sided fixed-sample Student t bounds (Student 1908) of a mean of differences.

    Needs two values at least; a sample with no spread has bounds equal to its mean.
    """
    alpha = _alpha(confidence)
    array = np.asarray(values, dtype=np.float64)
    if array.size < 2:
        raise ValueError("a t interval needs at least two values")
    mean = float(array.mean())
    standard_error = float(array.std(ddof=1)) / math.sqrt(array.size)
    half_width = float(student_t.ppf(1.0 - alpha, array.size - 1)) * standard_error
    return mean - half_width, mean + half_width


def kappa_fixed_bounds(
    *, confusion: npt.ArrayLike, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Return kappa and its one-sided fixed-sample analytic bounds (Fleiss et al. 1969)."""
    alpha = _alpha(confidence)
    kappa = kappa_from_confusion(confusion)
    if math.isnan(kappa.value):
        return math.nan, -1.0, 1.0
    z = float(ndtri(1.0 - alpha))
    low = max(-1.0, kappa.value - z * kappa.standard_error)
    high = min(1.0, kappa.value + z * kappa.standard_error)
    return kappa.value, low, high


def beta_binomial_clears(
    *,
    successes: npt.ArrayLike,
    n: npt.ArrayLike,
    threshold: float,
    confidence: float = 0.95,
    prior: tuple[float, float] = DEFAULT_PRIOR,
) -> np.ndarray:
    """Return whether the beta-binomial lower bound has reached the threshold.

    The same decision as ``beta_binomial_lower(...) >= threshold`` (Howard et al.
    2021) with one evaluation of the mixture instead of a bisection: the bound is at
    least the threshold exactly when the mixture martingale at the threshold has
    reached 1/alpha and the observed rate is above it. Used where many streams are
    decided at once.
    """
    alpha = _alpha(confidence)
    a, b = prior
    s_array, n_array = np.broadcast_arrays(
        np.asarray(successes, dtype=np.float64), np.asarray(n, dtype=np.float64)
    )
    if not 0.0 < threshold < 1.0:
        return np.full(s_array.shape, threshold <= 0.0)
    above = s_array > threshold * n_array
    p0 = np.full(s_array.shape, threshold)
    excluded = _log_truncated_mixture(p0, s_array, n_array, a, b) >= math.log(1.0 / alpha)
    return above & excluded
