"""Decide whether a canary or live version breaches its rollback thresholds on one window.

Pure: numpy and SciPy only, no Django. The monitor reads a window's figures from the
database (``deployments.monitor_window``) and hands them here; each check returns its
figure, the bound that decides it, the threshold, its sample size and a sentence.

The monitor looks every minute, so every decision rests on an anytime-valid bound (a
confidence sequence, ``analytics.stats.sequential``): the chance that a version at or
inside its thresholds is ever rolled back, however many times it is looked at, is at
most 1 - confidence per check. A fixed-sample interval looked at 1,440 times a day would
roll healthy versions back routinely. Each check rolls back only on evidence against the
version: the bound on the side of the threshold must be past it, not merely the figure.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from analytics.stats.sequential import (
    BETA_BINOMIAL_METHOD,
    beta_binomial_clears,
    beta_binomial_lower,
    beta_binomial_upper,
)

BREACH, OK, TOO_FEW, OFF = "breach", "ok", "too_few", "off"
AGREEMENT, ERROR_RATE, LATENCY, DRIFT = "audit_agreement", "error_rate", "latency_p95", "drift"
CHECK_TITLES = {
    AGREEMENT: "Audit agreement",
    ERROR_RATE: "Error rate",
    LATENCY: "Latency p95",
    DRIFT: "Drifted features",
}
P95 = 0.95
LATENCY_METHOD = (
    "anytime-valid lower bound of the p95: the share of decisions slower than a value is "
    "bounded with the " + BETA_BINOMIAL_METHOD
)
DRIFT_METHOD = (
    "share of features whose window test flags drift against the reference profile "
    "(smoothed PSI and KS or chi-square, Holm-adjusted, analytics.stats.drift_window)"
)


@dataclass(frozen=True)
class MonitorThresholds:
    """What a window must hold and stay within; None switches a check off."""

    agreement_floor: float | None
    min_audited: int
    min_decisions: int
    max_error_rate: float | None
    latency_p95_ms: float | None
    drifted_share_max: float | None
    confidence: float = 0.95


@dataclass(frozen=True)
class WindowFigures:
    """The counts of one version's window.

    ``audited`` audit items have a human answer (the consensus of their complete
    judgments), ``audit_agreed`` of them match the version's decision; ``audit_split``
    had inspectors who disagreed with each other and are left out. ``decisions`` are the
    version's decision rows (decided, deferred and failed), ``failed`` of them failed;
    ``latencies_ms`` are the decided rows' latencies. ``drift_rows`` items were compared
    with the reference, ``features`` features of which ``drifted_features`` drifted;
    ``features`` is None when the version has no reference profile.
    """

    audited: int = 0
    audit_agreed: int = 0
    audit_split: int = 0
    decisions: int = 0
    failed: int = 0
    latencies_ms: npt.NDArray[np.float64] | None = None
    drift_rows: int = 0
    features: int | None = None
    drifted_features: int = 0


@dataclass(frozen=True)
class Check:
    """One check of a window: the figure, the bound that decides it, its verdict and why.

    ``bound_side`` says which bound decides: "upper" for agreement (a breach needs even
    the upper bound below the floor), "lower" for error rate and latency (a breach needs
    even the lower bound above the limit).
    """

    name: str
    verdict: str
    value: float | None
    bound: float | None
    bound_side: str
    threshold: float | None
    n: int
    minimum: int
    sentence: str
    method: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MonitorResult:
    """Every check of a window and the overall verdict: breach if any check breached."""

    verdict: str
    checks: tuple[Check, ...]

    @property
    def breaches(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.verdict == BREACH)

    def reason(self) -> str:
        """Return the sentences of the breached checks, as one reason."""
        return " ".join(check.sentence for check in self.breaches)


def _percent(share: float, digits: int = 1) -> str:
    return f"{100 * share:.{digits}f}%"


def _threshold(share: float) -> str:
    return f"{100 * share:g}%"


def _level(confidence: float) -> str:
    return f"{100 * confidence:g}%"


def _too_few(
    name: str, have: int, need: int, what: str, threshold: float, side: str, note: str = ""
) -> Check:
    return Check(
        name=name,
        verdict=TOO_FEW,
        value=None,
        bound=None,
        bound_side=side,
        threshold=threshold,
        n=have,
        minimum=need,
        sentence=f"Not decided yet: {have} {what} in the window{note}, {need} needed.",
        method="",
    )


def _off(
    name: str, reason: str, n: int = 0, minimum: int = 0, threshold: float | None = None
) -> Check:
    return Check(name, OFF, None, None, "", threshold, n, minimum, reason, "")


def agreement_check(figures: WindowFigures, thresholds: MonitorThresholds) -> Check:
    """Return audit agreement against the floor: breach when its upper bound is below it."""
    floor = thresholds.agreement_floor
    n, minimum = figures.audited, thresholds.min_audited
    if floor is None:
        return _off(AGREEMENT, "Switched off: the policy has no agreement floor.", n, minimum)
    split = (
        f" ({figures.audit_split} more audit items left out: their inspectors disagreed)"
        if figures.audit_split
        else ""
    )
    if n < minimum or n == 0:
        return _too_few(AGREEMENT, n, minimum, "judged audit items", floor, "upper", split)
    value = figures.audit_agreed / n
    upper = float(
        beta_binomial_upper(successes=figures.audit_agreed, n=n, confidence=thresholds.confidence)
    )
    level = _level(thresholds.confidence)
    if upper < floor:
        verdict = BREACH
        sentence = (
            f"Audit agreement is {_percent(value)} on {n} judged audit items{split}: at most "
            f"{_percent(upper, 2)} at {level} confidence, below the floor of {_threshold(floor)}."
        )
    else:
        verdict = OK
        sentence = (
            f"Audit agreement is {_percent(value)} on {n} judged audit items{split}; it may "
            f"be as high as {_percent(upper, 2)} at {level} confidence, not surely below the "
            f"floor of {_threshold(floor)}."
        )
    return Check(
        name=AGREEMENT,
        verdict=verdict,
        value=value,
        bound=upper,
        bound_side="upper",
        threshold=floor,
        n=n,
        minimum=minimum,
        sentence=sentence,
        method=BETA_BINOMIAL_METHOD,
    )


def error_rate_check(figures: WindowFigures, thresholds: MonitorThresholds) -> Check:
    """Return the failed share of decisions: breach when its lower bound is above the limit."""
    limit = thresholds.max_error_rate
    n, minimum = figures.decisions, thresholds.min_decisions
    if limit is None:
        return _off(ERROR_RATE, "Switched off: the policy has no error-rate limit.", n, minimum)
    if n < minimum or n == 0:
        return _too_few(ERROR_RATE, n, minimum, "decisions", limit, "lower")
    value = figures.failed / n
    lower = float(
        beta_binomial_lower(successes=figures.failed, n=n, confidence=thresholds.confidence)
    )
    level = _level(thresholds.confidence)
    if lower > limit:
        verdict = BREACH
        sentence = (
            f"{figures.failed} of {n} decisions failed ({_percent(value)}): at least "
            f"{_percent(lower, 2)} at {level} confidence, above the limit of {_threshold(limit)}."
        )
    else:
        verdict = OK
        sentence = (
            f"{figures.failed} of {n} decisions failed ({_percent(value)}); the rate may be as "
            f"low as {_percent(lower, 2)} at {level} confidence, not surely above the limit of "
            f"{_threshold(limit)}."
        )
    return Check(
        name=ERROR_RATE,
        verdict=verdict,
        value=value,
        bound=lower,
        bound_side="lower",
        threshold=limit,
        n=n,
        minimum=minimum,
        sentence=sentence,
        method=BETA_BINOMIAL_METHOD,
    )


def p95_lower_rank(n: int, confidence: float) -> int | None:
    """Return c such that the c-th largest of n values is an anytime-valid lower bound of the p95.

    The p95 q has P(X > q) <= 0.05. If the c-th largest value L were above q, at least c
    of the n values would exceed q, so the confidence-sequence lower bound of P(X > q)
    would be at least that of c successes; c is the smallest count whose bound is past
    0.05, so that would contradict P(X > q) <= 0.05. The sequence holds at every n at
    once, at the one fixed point q, so the bound is anytime-valid. None when even n of n
    would not be enough (small n).
    """
    if n < 1:
        return None
    counts = np.arange(1, n + 1)
    clears = beta_binomial_clears(successes=counts, n=n, threshold=1.0 - P95, confidence=confidence)
    passing = np.flatnonzero(clears)
    return int(counts[passing[0]]) if passing.size else None


def p95_with_lower_bound(
    latencies_ms: npt.ArrayLike, confidence: float
) -> tuple[float | None, float | None]:
    """Return the p95 of the values (nearest rank) and its anytime-valid lower bound."""
    values = np.sort(np.asarray(latencies_ms, dtype=np.float64))
    n = values.size
    if n == 0:
        return None, None
    point = float(np.percentile(values, 100 * P95, method="inverted_cdf"))
    rank = p95_lower_rank(n, confidence)
    return point, None if rank is None else float(values[n - rank])


def latency_check(figures: WindowFigures, thresholds: MonitorThresholds) -> Check:
    """Return the decided rows' p95 latency: breach when its lower bound is above the limit."""
    limit = thresholds.latency_p95_ms
    latencies = figures.latencies_ms if figures.latencies_ms is not None else np.empty(0)
    n, minimum = int(latencies.size), thresholds.min_decisions
    if limit is None:
        return _off(LATENCY, "Switched off: the policy has no latency limit.", n, minimum)
    if n < minimum or n == 0:
        return _too_few(LATENCY, n, minimum, "decided items", limit, "lower")
    value, lower = p95_with_lower_bound(latencies, thresholds.confidence)
    assert value is not None
    level = _level(thresholds.confidence)
    if lower is None:
        verdict = OK
        sentence = (
            f"The p95 of {n} decisions is {value:.1f} ms; too few to bound it at {level} "
            "confidence, so it cannot be surely above the limit."
        )
    elif lower > limit:
        verdict = BREACH
        sentence = (
            f"The p95 latency of {n} decisions is {value:.1f} ms: at least {lower:.1f} ms at "
            f"{level} confidence, above the limit of {limit:g} ms."
        )
    else:
        verdict = OK
        sentence = (
            f"The p95 latency of {n} decisions is {value:.1f} ms; it may be as low as "
            f"{lower:.1f} ms at {level} confidence, not surely above the limit of {limit:g} ms."
        )
    return Check(
        name=LATENCY,
        verdict=verdict,
        value=value,
        bound=lower,
        bound_side="lower",
        threshold=limit,
        n=n,
        minimum=minimum,
        sentence=sentence,
        method=LATENCY_METHOD,
    )


def drift_check(figures: WindowFigures, thresholds: MonitorThresholds) -> Check:
    """Return the drifted share of features: breach when it is above the limit.

    Each feature's flag is already a test at the window's size with the family-wise
    error held (Holm), so the share counts features shown to have moved; it has no
    separate bound.
    """
    limit = thresholds.drifted_share_max
    n, minimum = figures.drift_rows, thresholds.min_decisions
    if limit is None:
        return _off(DRIFT, "Switched off: the policy has no drifted-share limit.", n, minimum)
    if figures.features is None or figures.features == 0:
        return _off(
            DRIFT,
            "Not checked: this version has no reference profile to compare its inputs with.",
            n,
            minimum,
            limit,
        )
    if n < minimum or n == 0:
        return _too_few(DRIFT, n, minimum, "items", limit, "")
    value = figures.drifted_features / figures.features
    counted = f"{figures.drifted_features} of {figures.features} features drifted on {n} items"
    if value > limit:
        verdict = BREACH
        sentence = f"{counted} ({_percent(value)}), above the limit of {_threshold(limit)}."
    else:
        verdict = OK
        sentence = f"{counted} ({_percent(value)}), within the limit of {_threshold(limit)}."
    return Check(
        name=DRIFT,
        verdict=verdict,
        value=value,
        bound=None,
        bound_side="",
        threshold=limit,
        n=n,
        minimum=minimum,
        sentence=sentence,
        method=DRIFT_METHOD,
    )


def monitor_evaluate(figures: WindowFigures, thresholds: MonitorThresholds) -> MonitorResult:
    """Return every check of the window and the overall verdict.

    breach if any check breached; ok if every check that is on decided ok; too_few
    otherwise (nothing breached, something still lacks its minimum sample).
    """
    if not 0.0 < thresholds.confidence < 1.0 or not math.isfinite(thresholds.confidence):
        raise ValueError(
            f"confidence must lie strictly between 0 and 1, got {thresholds.confidence}"
        )
    checks = (
        agreement_check(figures, thresholds),
        error_rate_check(figures, thresholds),
        latency_check(figures, thresholds),
        drift_check(figures, thresholds),
    )
    verdicts = {check.verdict for check in checks}
    if BREACH in verdicts:
        verdict = BREACH
    elif TOO_FEW in verdicts:
        verdict = TOO_FEW
    else:
        verdict = OK
    return MonitorResult(verdict=verdict, checks=checks)
