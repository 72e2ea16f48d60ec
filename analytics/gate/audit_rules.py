"""Decide the gate on a canary's audit sample: the same rules, less what it cannot measure.

Pure: no Django.

Two criteria are not the audit sample's to decide, and read "not measured on the audit
sample" (verdict off) rather than failing or waiting:

- Non-inferiority compares the model with inspectors judging the same item in a panel.
  Audit items are judged by one inspector unless the queue's double inspection picked
  them, so a canary's audit sample holds few panels or none. The shadow gate decided
  this criterion on every double-inspected item before the canary started. On the audit
  sample it still counts when its bound decides (a clear fail stops the canary, a clear
  pass is a pass); while it cannot decide, it neither holds the canary back nor passes it.
- INT8 parity compares an INT8 version with its FP32 parent on the same items; the parent
  does not score the items a canary decides, so it is the shadow gate's alone.

Every other criterion (sample size, agreement, kappa, recall, drift, error rate, latency)
is decided on the audit sample as on any evidence.
"""

from __future__ import annotations

from dataclasses import replace

from analytics.gate.inputs import GateEvidence, GatePolicyValues
from analytics.gate.rules import INSUFFICIENT, OFF, CriterionResult, GateResult, gate_evaluate

NOT_MEASURED = "not measured on the audit sample"


def _noninferiority_note(result: GateResult, evidence: GateEvidence) -> str | None:
    """Return why non-inferiority is not decided here, None when its bound decides it."""
    criterion = next((c for c in result.criteria if c.name == "noninferiority"), None)
    if criterion is None or criterion.verdict != INSUFFICIENT:
        return None
    panels = int(evidence.paired_differences.size)
    if panels == 0:
        return (
            f"{NOT_MEASURED}: no audit item was judged by a panel of inspectors; the shadow "
            "gate decided non-inferiority on every double-inspected item"
        )
    return (
        f"{NOT_MEASURED}: {panels} audit items judged by a panel do not decide it yet; the "
        "shadow gate decided non-inferiority, and here only a clear result counts"
    )


INT8_NOTE = (
    f"{NOT_MEASURED}: the FP32 parent does not score the items a canary decides; the shadow "
    "gate decided INT8 parity"
)


def _with_notes(
    criteria: tuple[CriterionResult, ...], notes: dict[str, str]
) -> tuple[CriterionResult, ...]:
    return tuple(
        replace(c, verdict=OFF, detail=notes[c.name]) if c.name in notes else c for c in criteria
    )


def audit_policy_values(
    *, policy: GatePolicyValues, evidence: GateEvidence
) -> tuple[GatePolicyValues, dict[str, str]]:
    """Return the policy the audit sample is decided on, and why each criterion left out is."""
    notes: dict[str, str] = {}
    if policy.noninferiority_margin is not None:
        note = _noninferiority_note(gate_evaluate(policy=policy, evidence=evidence), evidence)
        if note is not None:
            notes["noninferiority"] = note
    if policy.int8_parity_floor is not None and evidence.is_int8:
        notes["int8_parity"] = INT8_NOTE
    values = replace(
        policy,
        noninferiority_margin=None if "noninferiority" in notes else policy.noninferiority_margin,
        int8_parity_floor=None if "int8_parity" in notes else policy.int8_parity_floor,
    )
    return values, notes


def audit_gate_evaluate(*, policy: GatePolicyValues, evidence: GateEvidence) -> GateResult:
    """Return the gate's verdict on an audit sample, the unmeasurable criteria saying so."""
    values, notes = audit_policy_values(policy=policy, evidence=evidence)
    result = gate_evaluate(policy=values, evidence=evidence)
    return replace(
        result,
        criteria=_with_notes(result.criteria, notes),
        fixed_sample=_with_notes(result.fixed_sample, notes),
    )
