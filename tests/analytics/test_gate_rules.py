"""The gate's verdict rules, its figures against references, and its behaviour when watched."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score, recall_score

from analytics.gate.rules import (
    CriterionResult,
    GateEvidence,
    GatePolicyValues,
    GateResult,
    gate_evaluate,
)
from analytics.gate.streams import (
    StreamModel,
    agreement_passes,
    first_pass,
    noninferiority_passes,
    paired_differences,
    panel_counts,
)
from analytics.stats.sequential import empirical_bernstein_bounds

LABELS = tuple(f"label-{k}" for k in range(10))
LOOKS = np.arange(100, 10_001, 100)
STREAMS = 1000
# Panel items a stream of 10,000 judged items can hold: Binomial(10,000, 0.1) stays far below.
PANEL_ITEMS = 1400


def labelled_items(seed: int, n: int, accuracy: float) -> tuple[np.ndarray, np.ndarray]:
    """Return inspector and model labels where the model copies the inspector with this accuracy."""
    rng = np.random.default_rng(seed)
    inspector = rng.integers(0, len(LABELS), n)
    model = np.where(rng.random(n) < accuracy, inspector, rng.integers(0, len(LABELS), n))
    return inspector, model


def evidence_from(
    inspector: np.ndarray, model: np.ndarray, differences: np.ndarray, **overrides: object
) -> GateEvidence:
    """Return healthy evidence for these labels and paired differences."""
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(confusion, (inspector, model), 1)
    evidence = GateEvidence(
        labels=LABELS,
        confusion=confusion,
        paired_differences=differences,
        predictions=inspector.size,
        errors=0,
        latency_p95_ms=12.0,
        max_psi=0.05,
        drifted_share=0.0,
        int8_parity=None,
        is_int8=False,
    )
    return replace(evidence, **overrides)  # type: ignore[arg-type]


def good_evidence(**overrides: object) -> GateEvidence:
    """Return evidence of a strong model on 3,000 judged items, 300 of them on panels."""
    inspector, model = labelled_items(1, 3000, 0.97)
    differences = np.random.default_rng(2).choice([-0.5, 0.0, 0.5], p=[0.02, 0.9, 0.08], size=300)
    return evidence_from(inspector, model, differences, **overrides)


def criterion(result: GateResult, name: str) -> CriterionResult:
    """Return the criterion of this name from a gate result."""
    return next(c for c in result.criteria if c.name == name)


def test_a_strong_model_with_healthy_serving_passes_every_criterion() -> None:
    result = gate_evaluate(policy=GatePolicyValues(), evidence=good_evidence())
    verdicts = {c.name: c.verdict for c in result.criteria}
    assert result.verdict == "pass", result.criteria
    assert verdicts["int8_parity"] == "off"
    assert result.needs.judged_items == 0 and result.needs.double_inspected == 0


def test_figures_equal_scikit_learn() -> None:
    inspector, model = labelled_items(1, 3000, 0.97)
    result = gate_evaluate(policy=GatePolicyValues(), evidence=good_evidence())
    assert criterion(result, "agreement_floor").value == pytest.approx(np.mean(inspector == model))
    assert criterion(result, "kappa_floor").value == pytest.approx(
        cohen_kappa_score(inspector, model), rel=1e-12
    )
    recalls = recall_score(inspector, model, average=None)
    shown = criterion(result, "per_label_recall").value
    assert shown is not None and np.isclose(recalls, shown).any()


def test_gate_uses_the_confidence_sequence_and_shows_the_fixed_interval_beside_it() -> None:
    evidence = good_evidence()
    result = gate_evaluate(policy=GatePolicyValues(), evidence=evidence)
    lows, _ = empirical_bernstein_bounds(values=evidence.paired_differences, low=-1.0, high=1.0)
    assert criterion(result, "noninferiority").lower == pytest.approx(lows[-1])
    fixed = {c.name: c for c in result.fixed_sample}
    assert set(fixed) == {"noninferiority", "agreement_floor", "kappa_floor", "per_label_recall"}
    for name, shown in fixed.items():
        gated = criterion(result, name)
        assert gated.lower is not None and shown.lower is not None
        assert gated.lower <= shown.lower, name  # the anytime-valid bound is the wider one
        assert "fixed sample" in shown.method and "fixed sample" not in gated.method


def test_fixed_sample_policy_gates_on_the_fixed_sample_intervals() -> None:
    policy = GatePolicyValues(anytime_valid=False)
    result = gate_evaluate(policy=policy, evidence=good_evidence())
    assert criterion(result, "agreement_floor") == next(
        c for c in result.fixed_sample if c.name == "agreement_floor"
    )


def test_below_the_minimum_sample_every_bounded_criterion_is_insufficient() -> None:
    inspector, model = labelled_items(3, 400, 1.0)
    evidence = evidence_from(inspector, model, np.zeros(40))
    result = gate_evaluate(policy=GatePolicyValues(), evidence=evidence)
    assert result.verdict == "insufficient"
    assert criterion(result, "sample_size").verdict == "insufficient"
    for name in ("noninferiority", "agreement_floor", "kappa_floor", "per_label_recall"):
        assert criterion(result, name).verdict == "insufficient", name
    # 100 more to reach the minimum, and more still for the panel items non-inferiority needs.
    assert result.needs.judged_items >= 100 and result.needs.double_inspected > 0


def test_no_double_inspected_items_leave_noninferiority_insufficient() -> None:
    result = gate_evaluate(
        policy=GatePolicyValues(), evidence=good_evidence(paired_differences=np.zeros(0))
    )
    noninferiority = criterion(result, "noninferiority")
    assert noninferiority.verdict == "insufficient" and noninferiority.lower is None
    assert result.verdict == "insufficient" and result.needs.double_inspected > 0


def test_one_failing_criterion_fails_the_gate_even_when_others_are_insufficient() -> None:
    evidence = good_evidence(errors=100, max_psi=None)
    result = gate_evaluate(policy=GatePolicyValues(), evidence=evidence)
    assert criterion(result, "error_rate").verdict == "fail"
    assert criterion(result, "drift").verdict == "insufficient"
    assert result.verdict == "fail"


def test_a_label_shown_below_the_recall_floor_fails_and_is_named() -> None:
    inspector, model = labelled_items(1, 3000, 0.97)
    weak = inspector == 7
    model = np.where(weak & (np.random.default_rng(4).random(3000) < 0.5), 3, model)
    result = gate_evaluate(
        policy=GatePolicyValues(), evidence=evidence_from(inspector, model, np.zeros(300))
    )
    recall = criterion(result, "per_label_recall")
    assert recall.verdict == "fail" and "label-7" in recall.detail
    assert result.verdict == "fail"


def test_switched_off_criteria_are_ignored() -> None:
    policy = GatePolicyValues(max_error_rate=None, psi_major=None, drifted_share_max=None)
    result = gate_evaluate(
        policy=policy, evidence=good_evidence(errors=100, max_psi=None, drifted_share=None)
    )
    assert criterion(result, "error_rate").verdict == "off"
    assert criterion(result, "drift").verdict == "off"
    assert result.verdict == "pass"


def test_int8_variant_is_held_to_its_parity_floor() -> None:
    result = gate_evaluate(
        policy=GatePolicyValues(), evidence=good_evidence(is_int8=True, int8_parity=0.99)
    )
    assert criterion(result, "int8_parity").verdict == "fail"
    missing = gate_evaluate(policy=GatePolicyValues(), evidence=good_evidence(is_int8=True))
    assert criterion(missing, "int8_parity").verdict == "insufficient"


def test_needs_name_every_label_short_of_its_minimum() -> None:
    inspector, model = labelled_items(5, 1000, 0.97)
    inspector[inspector == 2] = 1
    inspector[:5] = 2
    model[:5] = 2
    result = gate_evaluate(
        policy=GatePolicyValues(), evidence=evidence_from(inspector, model, np.zeros(100))
    )
    assert result.needs.per_label["label-2"] >= 15
    assert "label-2 (5)" in criterion(result, "sample_size").detail
    assert result.needs.judged_items >= 15 * 1000 // 5


def test_the_evidence_table_must_match_the_labels() -> None:
    with pytest.raises(ValueError, match="10 x 10"):
        gate_evaluate(policy=GatePolicyValues(), evidence=good_evidence(confusion=np.ones((3, 3))))


@given(
    st.integers(min_value=0, max_value=3000),
    st.floats(min_value=0.0, max_value=1.0),
    st.integers(min_value=0, max_value=50),
    st.integers(min_value=0, max_value=10),
)
@settings(max_examples=30, deadline=None)
def test_every_figure_is_finite_or_none_and_every_verdict_known(
    n: int, accuracy: float, panel: int, seed: int
) -> None:
    inspector, model = labelled_items(seed, n, accuracy)
    differences = np.random.default_rng(seed).choice([-1.0, 0.0, 0.5, 1.0], size=panel)
    result = gate_evaluate(
        policy=GatePolicyValues(), evidence=evidence_from(inspector, model, differences)
    )
    assert result.verdict in {"pass", "fail", "insufficient"}
    for shown in (*result.criteria, *result.fixed_sample):
        assert shown.verdict in {"pass", "fail", "insufficient", "off"}
        for field in fields(shown):
            value = getattr(shown, field.name)
            if isinstance(value, float):
                assert math.isfinite(value), (shown.name, field.name)
    assert result.needs.judged_items >= 0 and result.needs.double_inspected >= 0


# Simulations. The stream model is StreamModel's: ten equally likely labels; inspectors
# right 95% of the time, otherwise another label at random; the model likewise with its
# own accuracy; independent errors; 10% of judged items go to a panel of two
# inspectors (of three with probability 0.3). The gate is looked at after every 100
# judged items up to 10,000, on 1,000 streams, with the policy's 500-item minimum.


def noninferiority_runs(model_accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Return the anytime-valid and fixed-sample passes per look, and the true mean difference."""
    rng = np.random.default_rng(seed)
    model = StreamModel(model_accuracy=model_accuracy)
    differences = paired_differences(rng=rng, model=model, streams=STREAMS, items=PANEL_ITEMS)
    counts = panel_counts(rng=rng, model=model, streams=STREAMS, looks=LOOKS)
    anytime, fixed = noninferiority_passes(
        differences=differences, counts=counts, judged=LOOKS, margin=0.02, min_judged=500
    )
    return anytime, fixed, model.noninferiority_mean()


def accuracy_for(mean_difference: float) -> float:
    """Return the model accuracy that gives this true mean paired difference."""
    base = StreamModel(model_accuracy=0.95)
    slope = base.noninferiority_mean() - StreamModel(model_accuracy=0.94).noninferiority_mean()
    return 0.95 + mean_difference / (slope / 0.01)


def test_simulated_gate_decisions_equal_gate_evaluate_on_the_same_stream() -> None:
    rng = np.random.default_rng(21)
    model = StreamModel(model_accuracy=0.97)
    differences = paired_differences(rng=rng, model=model, streams=3, items=PANEL_ITEMS)
    counts = panel_counts(rng=rng, model=model, streams=3, looks=LOOKS)
    anytime, _ = noninferiority_passes(
        differences=differences, counts=counts, judged=LOOKS, margin=0.02, min_judged=500
    )
    policy = GatePolicyValues(
        min_per_label=None, agreement_floor=None, kappa_floor=None, recall_floor=None,
        psi_major=None, drifted_share_max=None, max_error_rate=None, latency_p95_budget_ms=None,
    )  # fmt: skip
    for stream in range(3):
        for look in (4, 20, 60, 99):
            evidence = GateEvidence(
                labels=("any",), confusion=np.array([[LOOKS[look]]]),
                paired_differences=differences[stream, : counts[stream, look]],
                predictions=0, errors=0, latency_p95_ms=None, max_psi=None,
                drifted_share=None, int8_parity=None, is_int8=False,
            )  # fmt: skip
            verdict = gate_evaluate(policy=policy, evidence=evidence).verdict
            assert (verdict == "pass") == bool(anytime[stream, look]), (stream, look)


def test_a_candidate_worse_than_the_margin_rarely_passes_however_often_the_gate_is_looked_at() -> (
    None
):
    anytime, fixed, mean = noninferiority_runs(accuracy_for(-0.03), seed=31)
    anytime_rate, fixed_rate = anytime.any(axis=1).mean(), fixed.any(axis=1).mean()
    figures = (
        f"true difference {mean:+.3f}: passes in {anytime_rate:.1%} of streams (anytime-valid)"
        f" vs {fixed_rate:.1%} (fixed-sample t, same streams)"
    )
    print(figures)
    assert anytime_rate <= 0.05, figures
    assert fixed_rate > anytime_rate, figures


def test_a_candidate_exactly_at_the_margin_passes_at_most_alpha_of_the_time() -> None:
    anytime, fixed, mean = noninferiority_runs(accuracy_for(-0.02), seed=32)
    anytime_rate, fixed_rate = anytime.any(axis=1).mean(), fixed.any(axis=1).mean()
    figures = (
        f"true difference {mean:+.3f}: anytime-valid {anytime_rate:.1%}, fixed {fixed_rate:.1%}"
    )
    print(figures)
    assert anytime_rate <= 0.05, figures


def test_a_candidate_as_good_as_the_inspectors_eventually_passes_noninferiority() -> None:
    anytime, fixed, mean = noninferiority_runs(0.95, seed=33)
    anytime_median = float(np.median(first_pass(anytime, LOOKS)))
    fixed_median = float(np.median(first_pass(fixed, LOOKS)))
    figures = (
        f"true difference {mean:+.3f}: by 10,000 judged items {anytime.any(axis=1).mean():.1%}"
        f" pass (anytime-valid), {fixed.any(axis=1).mean():.1%} (fixed); median items to pass"
        f" {anytime_median:g} vs {fixed_median:g}"
    )
    print(figures)
    assert anytime.any(axis=1).mean() > 0.2, figures
    assert fixed_median <= 2_500, figures


@pytest.mark.xfail(
    strict=True,
    reason="with a true difference of 0, a 0.02 margin and 10% of items on panels, no"
    " anytime-valid bound reaches the margin within 2x the items of the peeking t interval:"
    " Ville's inequality costs about 2 log(1/alpha) / z^2 = 2.2x in sample size at one look",
)
def test_anytime_valid_noninferiority_needs_at_most_twice_the_items_of_the_fixed_gate() -> None:
    anytime, fixed, _ = noninferiority_runs(0.95, seed=33)
    assert np.median(first_pass(anytime, LOOKS)) <= 2 * np.median(first_pass(fixed, LOOKS))


@pytest.mark.parametrize("agreement", [0.93, 0.95])
def test_anytime_valid_agreement_floor_needs_at_most_twice_the_items_of_the_fixed_gate(
    agreement: float,
) -> None:
    anytime, fixed = agreement_passes(
        rng=np.random.default_rng(41), agreement=agreement, streams=STREAMS, looks=LOOKS,
        floor=0.90, min_judged=500,
    )  # fmt: skip
    anytime_median = float(np.median(first_pass(anytime, LOOKS)))
    fixed_median = float(np.median(first_pass(fixed, LOOKS)))
    figures = (
        f"agreement {agreement}: median items to pass {anytime_median:g} (anytime-valid)"
        f" vs {fixed_median:g} (fixed)"
    )
    print(figures)
    assert anytime_median <= 2 * fixed_median, figures


@pytest.mark.parametrize("agreement", [0.90, 0.89])
def test_agreement_floor_alone_keeps_false_passes_below_alpha_where_wilson_does_not(
    agreement: float,
) -> None:
    # No minimum sample, as in the peeking Wilson gate of FACTS.md (31.7% at 0.90, 6.4% at 0.89).
    anytime, fixed = agreement_passes(
        rng=np.random.default_rng(42), agreement=agreement, streams=STREAMS, looks=LOOKS,
        floor=0.90, min_judged=0,
    )  # fmt: skip
    anytime_rate, fixed_rate = anytime.any(axis=1).mean(), fixed.any(axis=1).mean()
    figures = (
        f"agreement {agreement}: false passes {anytime_rate:.1%} (anytime-valid)"
        f" vs {fixed_rate:.1%} (peeking Wilson)"
    )
    print(figures)
    assert anytime_rate <= 0.05, figures
