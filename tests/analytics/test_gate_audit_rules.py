"""The gate on an audit sample: the same rules, what it cannot measure saying so (no database)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from analytics.gate.audit_rules import audit_gate_evaluate
from analytics.gate.inputs import GatePolicyValues
from analytics.gate.rules import gate_evaluate
from tests.analytics.gate_evidence_fakes import PASSING, evidence_make

POLICY = GatePolicyValues()


def _by_name(result):
    return {c.name: c for c in result.criteria}


def test_an_audit_sample_without_panels_passes_and_says_non_inferiority_was_not_measured():
    evidence = evidence_make(**PASSING, pairs=0)
    assert gate_evaluate(policy=POLICY, evidence=evidence).verdict == "insufficient"

    result = audit_gate_evaluate(policy=POLICY, evidence=evidence)

    assert result.verdict == "pass"
    criterion = _by_name(result)["noninferiority"]
    assert criterion.verdict == "off"
    assert criterion.detail.startswith(
        "not measured on the audit sample: no audit item was judged by a panel"
    )
    assert result.needs.double_inspected == 0
    fixed = {c.name: c for c in result.fixed_sample}
    assert fixed["noninferiority"].verdict == "off"


def test_a_clear_non_inferiority_result_on_the_audit_sample_still_counts():
    passing = audit_gate_evaluate(policy=POLICY, evidence=evidence_make(**PASSING))
    assert _by_name(passing)["noninferiority"].verdict == "pass"

    worse = replace(evidence_make(**PASSING), paired_differences=np.full(3000, -0.5))
    failing = audit_gate_evaluate(policy=POLICY, evidence=worse)
    assert _by_name(failing)["noninferiority"].verdict == "fail"
    assert failing.verdict == "fail"


def test_an_int8_canary_is_not_held_back_by_a_parity_it_cannot_measure():
    evidence = replace(evidence_make(**PASSING), is_int8=True, int8_parity=None)
    assert gate_evaluate(policy=POLICY, evidence=evidence).verdict == "insufficient"
    result = audit_gate_evaluate(policy=POLICY, evidence=evidence)
    assert result.verdict == "pass"
    assert _by_name(result)["int8_parity"].detail.startswith("not measured on the audit sample")


def test_every_other_criterion_is_decided_on_the_audit_sample_as_anywhere():
    failing = evidence_make(**PASSING, errors=60)
    assert audit_gate_evaluate(policy=POLICY, evidence=failing).verdict == "fail"
    thin = evidence_make(per_label=30, agreement=0.9, pairs=0, predictions=90)
    result = audit_gate_evaluate(policy=POLICY, evidence=thin)
    assert result.verdict == "insufficient"
    assert _by_name(result)["sample_size"].verdict == "insufficient"
