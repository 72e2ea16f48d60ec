"""The rollback monitor's checks on plain numbers: bounds, minimum samples, verdicts."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analytics.stats.sequential import beta_binomial_upper
from deployments.monitor_rules import (
    AGREEMENT,
    BREACH,
    DRIFT,
    ERROR_RATE,
    LATENCY,
    OFF,
    OK,
    TOO_FEW,
    MonitorThresholds,
    WindowFigures,
    agreement_check,
    drift_check,
    error_rate_check,
    latency_check,
    monitor_evaluate,
    p95_lower_rank,
    p95_with_lower_bound,
)

THRESHOLDS = MonitorThresholds(
    agreement_floor=0.90,
    min_audited=100,
    min_decisions=200,
    max_error_rate=0.05,
    latency_p95_ms=100.0,
    drifted_share_max=0.5,
)


def _healthy(**changes: object) -> WindowFigures:
    figures = {
        "audited": 150,
        "audit_agreed": 145,
        "decisions": 1000,
        "failed": 2,
        "latencies_ms": np.linspace(2.0, 20.0, 990),
        "drift_rows": 1000,
        "features": 64,
        "drifted_features": 1,
    }
    return WindowFigures(**{**figures, **changes})  # type: ignore[arg-type]


def test_a_healthy_window_is_ok_on_every_check():
    result = monitor_evaluate(_healthy(), THRESHOLDS)
    assert result.verdict == OK
    assert [check.verdict for check in result.checks] == [OK, OK, OK, OK]
    assert [check.name for check in result.checks] == [AGREEMENT, ERROR_RATE, LATENCY, DRIFT]
    assert result.reason() == ""


def test_agreement_far_below_the_floor_breaches_at_the_minimum_sample():
    check = agreement_check(_healthy(audited=100, audit_agreed=60), THRESHOLDS)
    assert check.verdict == BREACH
    assert check.value == pytest.approx(0.6)
    assert check.bound == pytest.approx(
        float(beta_binomial_upper(successes=60, n=100, confidence=0.95))
    )
    assert check.bound < 0.90
    assert (check.bound_side, check.n, check.minimum, check.threshold) == ("upper", 100, 100, 0.9)
    assert check.sentence.startswith("Audit agreement is 60.0% on 100 judged audit items: at most")
    assert "below the floor of 90%" in check.sentence


def test_agreement_a_little_below_the_floor_is_not_yet_evidence_of_a_breach():
    # 87% on 150 items: below the floor as a figure, but the upper bound still reaches it.
    check = agreement_check(_healthy(audited=150, audit_agreed=130), THRESHOLDS)
    assert check.verdict == OK
    assert check.bound >= 0.90
    assert "not surely below the floor of 90%" in check.sentence


def test_a_healthy_version_at_the_minimum_sample_is_not_rolled_back():
    # 97% on 100 items: the gate's lower bound (0.897) is below 0.90, yet nothing says the
    # model got worse; rolling back on the lower bound would remove healthy canaries.
    check = agreement_check(_healthy(audited=100, audit_agreed=97), THRESHOLDS)
    assert check.verdict == OK


def test_audit_items_whose_inspectors_disagreed_are_named_in_the_sentence():
    check = agreement_check(_healthy(audited=40, audit_agreed=10, audit_split=3), THRESHOLDS)
    assert check.verdict == TOO_FEW
    assert check.sentence == (
        "Not decided yet: 40 judged audit items in the window (3 more audit items left out: "
        "their inspectors disagreed), 100 needed."
    )


def test_the_error_rate_breaches_when_even_its_lower_bound_is_over_the_limit():
    breach = error_rate_check(_healthy(decisions=400, failed=60), THRESHOLDS)
    assert breach.verdict == BREACH
    assert 0.05 < breach.bound <= breach.value == pytest.approx(0.15)
    assert "60 of 400 decisions failed (15.0%): at least" in breach.sentence
    ok = error_rate_check(_healthy(decisions=400, failed=24), THRESHOLDS)  # 6%, not surely > 5%
    assert ok.verdict == OK
    assert ok.bound <= 0.05


def test_the_latency_p95_breaches_when_even_its_lower_bound_is_over_the_limit():
    slow = np.concatenate((np.full(700, 20.0), np.full(300, 400.0)))
    breach = latency_check(_healthy(latencies_ms=slow), THRESHOLDS)
    assert breach.verdict == BREACH
    assert (breach.value, breach.bound) == (400.0, 400.0)
    assert "at least 400.0 ms at 95% confidence, above the limit of 100 ms" in breach.sentence
    # 6% of the decisions over the limit: the p95 is over it, but not surely.
    borderline = np.concatenate((np.full(940, 20.0), np.full(60, 400.0)))
    ok = latency_check(_healthy(latencies_ms=borderline), THRESHOLDS)
    assert (ok.verdict, ok.value) == (OK, 400.0)
    assert ok.bound == 20.0


@pytest.mark.parametrize("n", [20, 100, 250, 1000, 5000])
def test_the_anytime_p95_bound_is_never_above_the_fixed_sample_one(n):
    # The one-sided fixed-sample lower bound of the p95 (Conover 1999, 3.2) is the l-th
    # smallest value with P(Binomial(n, 0.95) < l) <= 0.05; valid at every look, the
    # anytime bound is at or below it.
    fixed_rank = int(stats.binom.ppf(0.05, n, 0.95))  # 1-based rank from the bottom
    anytime_rank_from_top = p95_lower_rank(n, 0.95)
    assert anytime_rank_from_top is not None
    assert n - anytime_rank_from_top + 1 <= fixed_rank


def test_the_p95_bound_agrees_with_its_rank_on_data():
    values = np.random.default_rng(3).exponential(10.0, size=500)
    point, lower = p95_with_lower_bound(values, 0.95)
    rank = p95_lower_rank(500, 0.95)
    assert point == pytest.approx(np.percentile(values, 95, method="inverted_cdf"))
    assert lower == pytest.approx(np.sort(values)[500 - rank])
    assert lower < point


def test_drift_breaches_on_a_share_over_the_limit_and_is_off_without_a_reference():
    assert drift_check(_healthy(drifted_features=40), THRESHOLDS).verdict == BREACH
    assert drift_check(_healthy(drifted_features=32), THRESHOLDS).verdict == OK
    missing = drift_check(_healthy(features=None), THRESHOLDS)
    assert missing.verdict == OFF
    assert "no reference profile" in missing.sentence


def test_a_threshold_set_to_null_switches_its_check_off():
    thresholds = MonitorThresholds(
        agreement_floor=None,
        min_audited=1,
        min_decisions=1,
        max_error_rate=None,
        latency_p95_ms=None,
        drifted_share_max=None,
    )
    bad = _healthy(audit_agreed=0, failed=1000, drifted_features=64)
    result = monitor_evaluate(bad, thresholds)
    assert [check.verdict for check in result.checks] == [OFF, OFF, OFF, OFF]
    assert result.verdict == OK


def test_the_overall_verdict_is_breach_if_any_check_breached_else_too_few_if_any_lacks_data():
    breached = monitor_evaluate(_healthy(audited=10, decisions=400, failed=200), THRESHOLDS)
    assert breached.verdict == BREACH
    assert [check.name for check in breached.breaches] == [ERROR_RATE]
    assert breached.reason().startswith("200 of 400 decisions failed")
    assert monitor_evaluate(_healthy(audited=10), THRESHOLDS).verdict == TOO_FEW


def test_an_empty_window_is_too_few_everywhere_and_says_so_in_sentences():
    result = monitor_evaluate(WindowFigures(features=64), THRESHOLDS)
    assert result.verdict == TOO_FEW
    assert [check.verdict for check in result.checks] == [TOO_FEW] * 4
    assert result.checks[1].sentence == "Not decided yet: 0 decisions in the window, 200 needed."
    assert all(check.value is None and check.bound is None for check in result.checks)


def test_a_healthy_model_at_the_floor_is_rarely_rolled_back_however_often_it_is_looked_at():
    # 2,000 streams of a model whose true agreement is exactly the floor, looked at after
    # every 20 audit items up to 1,000: anytime-valid, the share ever rolled back stays
    # under 1 - confidence. A fixed-sample bound looked at 50 times would not.
    rng = np.random.default_rng(12)
    agreed = np.cumsum(rng.random((2000, 1000)) < 0.90, axis=1)[:, 19::20]
    looks = np.arange(20, 1001, 20)
    upper = beta_binomial_upper(successes=agreed, n=looks, confidence=0.95)
    ever_rolled_back = (upper < 0.90).any(axis=1).mean()
    assert ever_rolled_back <= 0.05


counts = st.integers(min_value=0, max_value=5000)


@st.composite
def windows_below_their_minimum(draw: st.DrawFn) -> tuple[WindowFigures, MonitorThresholds]:
    min_audited = draw(st.integers(1, 2000))
    min_decisions = draw(st.integers(1, 2000))
    audited = draw(st.integers(0, min_audited - 1))
    decisions = draw(st.integers(0, min_decisions - 1))
    decided = draw(st.integers(0, decisions))
    features = draw(st.integers(1, 100))
    figures = WindowFigures(
        audited=audited,
        audit_agreed=draw(st.integers(0, audited)),
        audit_split=draw(counts),
        decisions=decisions,
        failed=draw(st.integers(0, decisions)),
        latencies_ms=np.full(decided, draw(st.floats(0.0, 1e6))),
        drift_rows=draw(st.integers(0, min_decisions - 1)),
        features=features,
        drifted_features=draw(st.integers(0, features)),
    )
    thresholds = MonitorThresholds(
        agreement_floor=draw(st.floats(0.0, 1.0)),
        min_audited=min_audited,
        min_decisions=min_decisions,
        max_error_rate=draw(st.floats(0.0, 1.0)),
        latency_p95_ms=draw(st.floats(1e-3, 1e6)),
        drifted_share_max=draw(st.floats(0.0, 1.0)),
        confidence=draw(st.floats(0.51, 0.999)),
    )
    return figures, thresholds


@settings(max_examples=150, deadline=None)
@given(windows_below_their_minimum())
def test_no_check_breaches_below_its_minimum_sample_whatever_the_figures(case):
    figures, thresholds = case
    result = monitor_evaluate(figures, thresholds)
    assert result.verdict == TOO_FEW
    assert all(check.verdict == TOO_FEW for check in result.checks)


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 3000),
    share=st.floats(0.0, 1.0),
    confidence=st.floats(0.51, 0.999),
    latencies=st.lists(st.floats(0.0, 1e5), min_size=1, max_size=400),
)
def test_the_deciding_bound_is_never_on_the_lenient_side_of_the_figure(
    n, share, confidence, latencies
):
    thresholds = MonitorThresholds(
        agreement_floor=0.9,
        min_audited=1,
        min_decisions=1,
        max_error_rate=0.05,
        latency_p95_ms=100.0,
        drifted_share_max=0.5,
        confidence=confidence,
    )
    successes = round(share * n)
    figures = WindowFigures(
        audited=n,
        audit_agreed=successes,
        decisions=n,
        failed=successes,
        latencies_ms=np.asarray(latencies),
    )
    agreement = agreement_check(figures, thresholds)
    errors = error_rate_check(figures, thresholds)
    latency = latency_check(figures, thresholds)
    # Agreement breaches low, so its bound is the upper one; errors and latency breach high.
    assert agreement.bound >= agreement.value - 1e-12
    assert errors.bound <= errors.value + 1e-12
    assert latency.bound is None or latency.bound <= latency.value
    for check in (agreement, errors, latency):
        if check.verdict == BREACH:  # so the figure itself is past the threshold too
            past = (
                check.value < check.threshold
                if check.name == AGREEMENT
                else check.value > check.threshold
            )
            assert past
