"""Headline lights: one rule per figure, decided on its bound, grey below its minimum sample."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.stats.agreement import kappa_interval
from analytics.stats.calibration import reliability_bins
from analytics.stats.calibration_check import calibration_check_from_counts, calibration_light
from analytics.stats.counts import PeriodCounts
from analytics.stats.lights import LIGHT_LABELS, light_from_bound
from analytics.summaries.agreement import agreement_summary
from analytics.summaries.confidence import confidence_summary
from analytics.summaries.headlines import HEADLINE_RULE, HEADLINE_RULES, figure_light

bounds = st.tuples(st.floats(0, 1), st.floats(0, 1)).map(sorted)


@pytest.mark.parametrize("rule", HEADLINE_RULES, ids=lambda rule: rule.key)
@given(interval=bounds, n=st.integers(0, 1000))
def test_every_headline_light_is_light_from_bound_on_its_interval(rule, interval, n) -> None:
    low, high = interval
    light = figure_light(rule, low=low, high=high, n=n)
    if rule.higher_is_better:
        expected = light_from_bound(
            lower=low, upper=high, good=rule.good, bad=rule.bad, n=n, min_n=rule.min_n
        )
    else:
        expected = light_from_bound(
            lower=-high, upper=-low, good=-rule.good, bad=-rule.bad, n=n, min_n=rule.min_n
        )
    assert light.light == expected
    assert light.label == LIGHT_LABELS[expected]
    assert light.sentence.endswith(".")
    if n < rule.min_n:
        assert light.sentence == f"{rule.count_text(n)}; lights need {rule.min_n}."


def test_twelve_judgments_read_as_a_sentence_not_a_light() -> None:
    light = figure_light(HEADLINE_RULE["agreement"], low=0.74, high=1.0, n=12)
    assert (light.light, light.sentence) == (
        "insufficient",
        "12 compared judgments; lights need 50.",
    )


def test_one_agreeing_judgment_never_turns_agreement_or_kappa_green() -> None:
    report = agreement_summary(
        total=PeriodCounts(n_classes=2, confusion_each=np.array([[1, 0], [0, 0]])),
        days=[],
        labels=["a", "b"],
        inspector_names={},
    )
    assert report.agreement.rate == 1.0
    assert report.agreement_light.light == "insufficient"
    assert report.kappa_light.light == "insufficient"


def test_a_perfect_table_of_fifty_is_not_green_on_its_kappa_bound_alone() -> None:
    table = np.array([[30, 0], [0, 20]])
    interval = kappa_interval(table)
    light = figure_light(HEADLINE_RULE["kappa"], low=interval.low, high=interval.high, n=50)
    assert interval.value == 1.0
    assert light.light == ("green" if interval.low >= 0.81 else "amber")
    assert "95% kappa interval" in light.sentence


def test_lower_is_better_figures_read_their_upper_bound_for_green() -> None:
    rule = HEADLINE_RULE["error_rate"]
    assert figure_light(rule, low=0.0, high=0.008, n=400).light == "green"
    assert figure_light(rule, low=0.0, high=0.02, n=400).light == "amber"
    red = figure_light(rule, low=0.06, high=0.09, n=400)
    assert red.light == "red"
    assert red.sentence == "The 95% Wilson interval [0.0600, 0.0900] lies above 0.0500."


@pytest.mark.parametrize("n", [60, 250, 1000])
def test_the_ece_light_is_calibration_lights(n: int) -> None:
    rng = np.random.default_rng(n)
    confidence = rng.uniform(0.5, 1.0, n)
    correct = rng.random(n) < confidence - 0.1
    bins = reliability_bins(confidence, correct)
    report = confidence_summary(total=PeriodCounts(n_classes=2, reliability=bins, coverage=None))
    rule = HEADLINE_RULE["ece"]
    check = calibration_check_from_counts(bins)
    assert report.ece_light.light == calibration_light(
        check=check, good=rule.good, bad=rule.bad, min_n=rule.min_n
    )
    assert report.ece_if_calibrated == check.expected_if_calibrated


def test_a_perfectly_calibrated_window_of_50_is_grey_not_amber() -> None:
    rng = np.random.default_rng(5)
    confidence = rng.uniform(0.5, 1.0, 50)
    bins = reliability_bins(confidence, rng.random(50) < confidence)
    report = confidence_summary(total=PeriodCounts(n_classes=2, reliability=bins))
    assert report.ece_light.light == "insufficient"
    assert report.ece_light.sentence == "50 items with a consensus decision; lights need 200."
