"""ECE beside what a perfectly calibrated model shows on the same bins and n.

Plain numpy: no Django import. ECE is biased upward at small n, so a figure alone misleads;
the check simulates calibrated windows of the same size and bins to say what to expect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analytics.stats.calibration import ConfidenceBins, expected_calibration_error_from_counts
from analytics.stats.lights import Light, light_from_bound

CALIBRATION_RESAMPLES = 2000
CALIBRATION_SEED = 0
CALIBRATION_MIN_N = 200


@dataclass(frozen=True)
class CalibrationCheck:
    """ECE beside what a perfectly calibrated model would show on the same bins and n.

    ``expected_if_calibrated`` is the mean ECE of a calibrated model, ``low_if_calibrated``
    and ``high_if_calibrated`` its 5% and 95% quantiles; ``debiased`` is ECE less that
    mean, floored at 0; ``excess_low`` and ``excess_high`` bound the excess over it.
    """

    value: float
    expected_if_calibrated: float
    low_if_calibrated: float
    high_if_calibrated: float
    debiased: float
    excess_low: float
    excess_high: float
    n: int
    method: str


def calibration_check_from_counts(
    bins: ConfidenceBins, resamples: int = CALIBRATION_RESAMPLES, seed: int = CALIBRATION_SEED
) -> CalibrationCheck:
    """Return ECE with its distribution under perfect calibration at this n, simulated.

    ECE is biased upward on few items (Kumar, Liang & Ma 2019, "Verified uncertainty
    calibration", NeurIPS; Roelofs et al. 2022, "Mitigating bias in calibration error
    estimation", AISTATS): a calibrated model shows about 0.1 on 50 items. Correct
    counts of each bin are drawn as Binomial(items, mean confidence) -- the largest
    variance a bin's Poisson-binomial can have, so the bias is not understated --
    ``resamples`` times with a fixed seed. The excess bounds shift ECE by the 95% and
    5% quantiles' distance from the mean: a 90% interval if the estimator spreads
    about its bias the way it does at perfect calibration.
    """
    method = (
        f"ECE on {bins.count.size} bins against {resamples} simulated perfectly calibrated"
        f" windows of the same size (seed {seed})"
    )
    value = expected_calibration_error_from_counts(bins)
    if bins.n == 0:
        nan = math.nan
        return CalibrationCheck(nan, nan, nan, nan, nan, nan, nan, 0, method)
    filled = bins.count > 0
    mean_confidence = np.where(filled, bins.confidence_sum / np.maximum(bins.count, 1), 0.0)
    rng = np.random.default_rng(seed)
    correct = rng.binomial(
        bins.count, np.clip(mean_confidence, 0.0, 1.0), size=(resamples, bins.count.size)
    )
    null = np.sum(np.abs(correct - bins.confidence_sum), axis=1) / bins.n
    expected = float(null.mean())
    low, high = (float(q) for q in np.quantile(null, [0.05, 0.95]))
    return CalibrationCheck(
        value=value,
        expected_if_calibrated=expected,
        low_if_calibrated=low,
        high_if_calibrated=high,
        debiased=max(0.0, value - expected),
        excess_low=max(0.0, value - high),
        excess_high=max(0.0, value - low),
        n=bins.n,
        method=method,
    )


def calibration_light(
    *, check: CalibrationCheck, good: float, bad: float, min_n: int = CALIBRATION_MIN_N
) -> Light:
    """Return the ECE light: green when even the excess's upper bound is within good,
    red when its lower bound is past bad, "insufficient" below min_n items."""
    return light_from_bound(
        lower=-check.excess_high,
        upper=-check.excess_low,
        good=-good,
        bad=-bad,
        n=check.n,
        min_n=min_n,
    )
