"""Decide a model version's promotion gate from its evidence: each criterion, bound, verdict.

Pure: numpy and SciPy only, no Django. The Django side gathers a ``GateEvidence`` from
the analytics rollups and stores the ``GateResult``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from analytics.gate.inputs import GateEvidence, GatePolicyValues
from analytics.gate.needs import needs_estimate
from analytics.stats.sequential import (
    BETA_BINOMIAL_METHOD,
    EMPIRICAL_BERNSTEIN_METHOD,
    KAPPA_FIXED_METHOD,
    KAPPA_SEQUENTIAL_METHOD,
    STUDENT_T_METHOD,
    WILSON_METHOD,
    beta_binomial_lower,
    beta_binomial_upper,
    empirical_bernstein_bounds,
    kappa_fixed_bounds,
    kappa_sequential_bounds,
    student_t_bounds,
    wilson_bounds,
)

PASS, FAIL, INSUFFICIENT, OFF = "pass", "fail", "insufficient", "off"


@dataclass(frozen=True)
class CriterionResult:
    """One criterion's figure, its bounds, threshold and verdict."""

    name: str
    verdict: str
    value: float | None
    lower: float | None
    upper: float | None
    threshold: float | None
    method: str
    detail: str


@dataclass(frozen=True)
class SampleNeeds:
    """How many more items the gate needs, estimated from the current rates."""

    judged_items: int
    double_inspected: int
    per_label: dict[str, int]


@dataclass(frozen=True)
class GateResult:
    """The overall verdict with every criterion, and the fixed-sample figures beside them."""

    verdict: str
    criteria: tuple[CriterionResult, ...]
    needs: SampleNeeds
    fixed_sample: tuple[CriterionResult, ...]


def _finite(value: float | None) -> float | None:
    """Return the value as a float, or None when it is missing or not finite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _bounded_verdict(lower: float | None, upper: float | None, threshold: float) -> str:
    """Return pass when the lower bound clears the line, fail when the upper is below it."""
    if lower is None or upper is None:
        return INSUFFICIENT
    if lower >= threshold:
        return PASS
    if upper < threshold:
        return FAIL
    return INSUFFICIENT


def _bounded(
    *,
    name: str,
    value: float | None,
    bounds: tuple[float, float] | None,
    threshold: float,
    enough: bool,
    method: str,
    detail: str,
) -> CriterionResult:
    """Return a bounded criterion, insufficient below the minimum sample whatever its bound."""
    lower, upper = (None, None) if bounds is None else (_finite(bounds[0]), _finite(bounds[1]))
    verdict = _bounded_verdict(lower, upper, threshold) if enough else INSUFFICIENT
    return CriterionResult(
        name=name,
        verdict=verdict,
        value=_finite(value),
        lower=lower,
        upper=upper,
        threshold=threshold,
        method=method,
        detail=detail,
    )


def _off(name: str) -> CriterionResult:
    """Return a criterion that is switched off or does not apply."""
    return CriterionResult(name, OFF, None, None, None, None, "", "switched off or not applicable")


def _sample_size(policy: GatePolicyValues, evidence: GateEvidence) -> CriterionResult:
    """Return whether the window holds enough judged items overall and per label."""
    if policy.min_judged_items is None and policy.min_per_label is None:
        return _off("sample_size")
    judged = int(evidence.confusion.sum())
    per_label = evidence.confusion.sum(axis=1)
    short = [
        f"{evidence.labels[k]} ({int(count)})"
        for k, count in enumerate(per_label)
        if policy.min_per_label is not None and 0 < count < policy.min_per_label
    ]
    overall_ok = policy.min_judged_items is None or judged >= policy.min_judged_items
    enough = overall_ok and not short
    detail = f"{judged} judged items"
    if policy.min_judged_items is not None:
        detail += f" of {policy.min_judged_items} needed"
    if short:
        detail += f"; below {policy.min_per_label} for " + ", ".join(short)
    threshold = policy.min_judged_items
    return CriterionResult(
        name="sample_size",
        verdict=PASS if enough else INSUFFICIENT,
        value=float(judged),
        lower=None,
        upper=None,
        threshold=None if threshold is None else float(threshold),
        method="count of judged items in the window",
        detail=detail,
    )


def _noninferiority(
    policy: GatePolicyValues, evidence: GateEvidence, *, enough: bool, anytime: bool
) -> CriterionResult:
    """Return model-minus-inspector agreement on double-inspected items against the margin."""
    if policy.noninferiority_margin is None:
        return _off("noninferiority")
    differences = np.asarray(evidence.paired_differences, dtype=np.float64)
    threshold = -policy.noninferiority_margin
    bounds: tuple[float, float] | None = None
    if anytime and differences.size:
        lows, highs = empirical_bernstein_bounds(
            values=differences, low=-1.0, high=1.0, confidence=policy.confidence
        )
        bounds = (float(lows[-1]), float(highs[-1]))
    elif not anytime and differences.size >= 2:
        bounds = student_t_bounds(values=differences, confidence=policy.confidence)
    return _bounded(
        name="noninferiority",
        value=float(differences.mean()) if differences.size else None,
        bounds=bounds,
        threshold=threshold,
        enough=enough,
        method=EMPIRICAL_BERNSTEIN_METHOD if anytime else STUDENT_T_METHOD,
        detail=f"model minus inspector agreement on {differences.size} double-inspected"
        f" items; the lower bound must be at least {threshold:g}",
    )


def _agreement(
    policy: GatePolicyValues, evidence: GateEvidence, *, enough: bool, anytime: bool
) -> CriterionResult:
    """Return model-vs-inspector agreement against its floor."""
    if policy.agreement_floor is None:
        return _off("agreement_floor")
    judged = int(evidence.confusion.sum())
    agreed = int(np.trace(evidence.confusion))
    bounds: tuple[float, float] | None = None
    if judged and anytime:
        bounds = (
            float(beta_binomial_lower(successes=agreed, n=judged, confidence=policy.confidence)),
            float(beta_binomial_upper(successes=agreed, n=judged, confidence=policy.confidence)),
        )
    elif judged:
        bounds = wilson_bounds(successes=agreed, n=judged, confidence=policy.confidence)
    return _bounded(
        name="agreement_floor",
        value=agreed / judged if judged else None,
        bounds=bounds,
        threshold=policy.agreement_floor,
        enough=enough,
        method=BETA_BINOMIAL_METHOD if anytime else WILSON_METHOD,
        detail=f"the model agrees with the inspectors on {agreed} of {judged} judged items",
    )


def _kappa(
    policy: GatePolicyValues, evidence: GateEvidence, *, enough: bool, anytime: bool
) -> CriterionResult:
    """Return Cohen's kappa of model against inspectors against its floor."""
    if policy.kappa_floor is None:
        return _off("kappa_floor")
    judged = int(evidence.confusion.sum())
    value, fixed_low, fixed_high = kappa_fixed_bounds(
        confusion=evidence.confusion, confidence=policy.confidence
    )
    bounds: tuple[float, float] | None = None
    if judged and anytime:
        bounds = kappa_sequential_bounds(confusion=evidence.confusion, confidence=policy.confidence)
    elif judged:
        bounds = (fixed_low, fixed_high)
    return _bounded(
        name="kappa_floor",
        value=value,
        bounds=bounds,
        threshold=policy.kappa_floor,
        enough=enough,
        method=KAPPA_SEQUENTIAL_METHOD if anytime else KAPPA_FIXED_METHOD,
        detail=f"Cohen's kappa of the model against the inspectors over {judged} judged items",
    )


def _recall(
    policy: GatePolicyValues, evidence: GateEvidence, *, enough: bool, anytime: bool
) -> CriterionResult:
    """Return the deciding label's recall against the floor, over labels with enough items."""
    if policy.recall_floor is None:
        return _off("per_label_recall")
    floor = policy.recall_floor
    totals = evidence.confusion.sum(axis=1).astype(np.int64)
    hits = np.diag(evidence.confusion).astype(np.int64)
    judged_labels = np.flatnonzero(totals >= max(policy.recall_min_items, 1))
    method = BETA_BINOMIAL_METHOD if anytime else WILSON_METHOD
    if judged_labels.size == 0:
        detail = f"no label has {policy.recall_min_items} judged items yet"
        return CriterionResult(
            "per_label_recall", INSUFFICIENT, None, None, None, floor, method, detail
        )
    if anytime:
        kwargs = {"successes": hits[judged_labels], "n": totals[judged_labels]}
        lows = beta_binomial_lower(**kwargs, confidence=policy.confidence)
        highs = beta_binomial_upper(**kwargs, confidence=policy.confidence)
    else:
        pairs = [
            wilson_bounds(successes=int(hits[k]), n=int(totals[k]), confidence=policy.confidence)
            for k in judged_labels
        ]
        lows = np.array([low for low, _ in pairs])
        highs = np.array([high for _, high in pairs])
    # Every label must clear the floor, so one label shown to be below it fails the model
    # and otherwise the label with the lowest bound decides.
    failing = np.flatnonzero(highs < floor)
    position = int(failing[0]) if failing.size else int(np.argmin(lows))
    if failing.size:
        verdict = FAIL
    elif float(lows.min()) >= floor:
        verdict = PASS
    else:
        verdict = INSUFFICIENT
    label = int(judged_labels[position])
    lower, upper = float(lows[position]), float(highs[position])
    relation = ">=" if lower >= floor else "<"
    return CriterionResult(
        name="per_label_recall",
        verdict=verdict if enough else INSUFFICIENT,
        value=float(hits[label] / totals[label]),
        lower=lower,
        upper=upper,
        threshold=floor,
        method=method,
        detail=f"label {evidence.labels[label]} recall lower bound {lower:.3f} {relation}"
        f" {floor:g} ({int(totals[label])} items)",
    )


def _point(
    name: str, value: float | None, threshold: float, *, at_most: bool, unit: str
) -> CriterionResult:
    """Return a criterion decided on its value: insufficient when there is no value."""
    number = _finite(value)
    if number is None:
        verdict = INSUFFICIENT
        detail = f"no {unit} yet"
    else:
        ok = number <= threshold if at_most else number >= threshold
        verdict = PASS if ok else FAIL
        detail = f"{unit} {number:.4g} must be {'at most' if at_most else 'at least'} {threshold:g}"
    return CriterionResult(
        name, verdict, number, None, None, threshold, "value in the window", detail
    )


def _drift(policy: GatePolicyValues, evidence: GateEvidence) -> CriterionResult:
    """Return whether no feature drifted badly and few features drifted at all."""
    if policy.psi_major is None and policy.drifted_share_max is None:
        return _off("drift")
    psi, share = _finite(evidence.max_psi), _finite(evidence.drifted_share)
    missing = (policy.psi_major is not None and psi is None) or (
        policy.drifted_share_max is not None and share is None
    )
    psi_ok = policy.psi_major is None or (psi is not None and psi < policy.psi_major)
    share_ok = policy.drifted_share_max is None or (
        share is not None and share <= policy.drifted_share_max
    )
    verdict = INSUFFICIENT if missing else (PASS if psi_ok and share_ok else FAIL)
    psi_text = "no PSI yet" if psi is None else f"largest PSI {psi:.3f}"
    share_text = (
        "no drifted-feature share yet" if share is None else f"{share:.0%} of features drifted"
    )
    detail = f"{psi_text}, {share_text}"
    method = "largest PSI and drifted-feature share in the window"
    return CriterionResult("drift", verdict, psi, None, None, policy.psi_major, method, detail)


def _point_criteria(policy: GatePolicyValues, evidence: GateEvidence) -> list[CriterionResult]:
    """Return drift, error rate, latency and INT8 parity, decided on their values."""
    results = [_drift(policy, evidence)]
    if policy.max_error_rate is None:
        results.append(_off("error_rate"))
    else:
        rate = evidence.errors / evidence.predictions if evidence.predictions else None
        unit = "prediction error rate"
        results.append(_point("error_rate", rate, policy.max_error_rate, at_most=True, unit=unit))
    if policy.latency_p95_budget_ms is None:
        results.append(_off("latency_p95"))
    else:
        budget, unit = policy.latency_p95_budget_ms, "latency p95 (ms)"
        latency = evidence.latency_p95_ms
        results.append(_point("latency_p95", latency, budget, at_most=True, unit=unit))
    if policy.int8_parity_floor is None or not evidence.is_int8:
        results.append(_off("int8_parity"))
    else:
        floor, unit = policy.int8_parity_floor, "INT8/FP32 top-1 parity"
        results.append(_point("int8_parity", evidence.int8_parity, floor, at_most=False, unit=unit))
    return results


def _bounded_criteria(
    policy: GatePolicyValues, evidence: GateEvidence, *, enough: bool, anytime: bool
) -> tuple[CriterionResult, ...]:
    """Return the four bounded criteria with one kind of bound."""
    return tuple(
        criterion(policy, evidence, enough=enough, anytime=anytime)
        for criterion in (_noninferiority, _agreement, _kappa, _recall)
    )


def _overall(criteria: tuple[CriterionResult, ...]) -> str:
    """Return fail if any criterion fails, else insufficient if any is, else pass."""
    verdicts = {criterion.verdict for criterion in criteria}
    if FAIL in verdicts:
        return FAIL
    if INSUFFICIENT in verdicts:
        return INSUFFICIENT
    return PASS


def gate_evaluate(*, policy: GatePolicyValues, evidence: GateEvidence) -> GateResult:
    """Return the gate's verdict, every criterion and the sample still needed."""
    confusion = np.asarray(evidence.confusion, dtype=np.int64)
    k = len(evidence.labels)
    if confusion.shape != (k, k):
        raise ValueError(
            f"confusion must be {k} x {k} in the order of labels, got {confusion.shape}"
        )
    evidence = replace(evidence, confusion=confusion)
    size = _sample_size(policy, evidence)
    enough = size.verdict != INSUFFICIENT
    anytime = _bounded_criteria(policy, evidence, enough=enough, anytime=True)
    fixed = _bounded_criteria(policy, evidence, enough=enough, anytime=False)
    criteria = (
        size,
        *(anytime if policy.anytime_valid else fixed),
        *_point_criteria(policy, evidence),
    )
    judged, double, per_label = needs_estimate(policy=policy, evidence=evidence)
    return GateResult(
        verdict=_overall(criteria),
        criteria=criteria,
        needs=SampleNeeds(judged_items=judged, double_inspected=double, per_label=per_label),
        fixed_sample=fixed,
    )
