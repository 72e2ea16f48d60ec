"""Evaluating the gate stores an immutable, JSON-safe snapshot of every figure it used."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from analytics import services
from analytics.gate.evaluation import (
    gate_evaluation_document,
    gate_evaluation_get,
    gate_evaluation_latest,
    gate_evaluation_run,
)
from analytics.gate.policy import gate_policy_update
from analytics.models import GateEvaluation
from deployments.models import AuditEvent
from tests.analytics.gate_data import gate_data_build, gate_data_populate

pytestmark = pytest.mark.django_db

CRITERIA = [
    "sample_size",
    "noninferiority",
    "agreement_floor",
    "kappa_floor",
    "per_label_recall",
    "drift",
    "error_rate",
    "latency_p95",
    "int8_parity",
]
BOUNDED = ["noninferiority", "agreement_floor", "kappa_floor", "per_label_recall"]


def _populated():
    data = gate_data_build()
    today = services.utc_today()
    gate_data_populate(data, seed=3, n=120, days=[today - timedelta(days=1), today])
    services.rollups_refresh(today=today)
    return data


def test_an_evaluation_stores_policy_window_criteria_needs_and_evidence(ml_lead):
    data = _populated()

    evaluation = gate_evaluation_run(model_version=data.fp32, actor=ml_lead)

    snapshot = evaluation.snapshot
    today = services.utc_today()
    assert evaluation.since == today - timedelta(days=27)
    assert evaluation.until == today
    assert snapshot["window"] == {
        "since": evaluation.since.isoformat(),
        "until": today.isoformat(),
        "days": 28,
    }
    assert snapshot["policy"]["version"] == evaluation.policy.version == 1
    assert [c["name"] for c in snapshot["criteria"]] == CRITERIA
    for criterion in snapshot["criteria"]:
        assert set(criterion) >= {"name", "verdict", "value", "lower", "upper", "threshold"}
        assert criterion["verdict"] in {"pass", "fail", "insufficient", "off"}
    assert snapshot["bounds_used"] == "anytime_valid"
    assert [c["name"] for c in snapshot["bounds"]["anytime_valid"]] == BOUNDED
    assert [c["name"] for c in snapshot["bounds"]["fixed_sample"]] == BOUNDED
    assert "Wilson" in snapshot["bounds"]["fixed_sample"][1]["method"]
    assert "mixture" in snapshot["bounds"]["anytime_valid"][1]["method"]
    by_name = {c["name"]: c for c in snapshot["criteria"]}
    # Far fewer than 500 judged items: too few to decide, and the needs say how many more.
    assert by_name["sample_size"]["verdict"] == "insufficient"
    assert snapshot["needs"]["judged_items"] > 0
    # One prediction in twenty failed: that fails the gate whatever the sample.
    assert by_name["error_rate"]["verdict"] == "fail"
    assert snapshot["verdict"] == evaluation.verdict == "fail"
    evidence = snapshot["evidence"]
    assert evidence["judged"] == sum(evidence["judged_per_label"]) > 0
    assert evidence["double_inspected"] > 0
    assert evidence["predictions"] >= evidence["errors"] > 0
    assert (snapshot["model"], snapshot["evaluated_by"]) == (data.fp32.key, "lead")


def test_an_evaluation_is_audited_with_its_id_as_evidence(ml_lead):
    data = _populated()
    evaluation = gate_evaluation_run(model_version=data.fp32, actor=ml_lead)
    event = AuditEvent.objects.get(action="gate.evaluate")
    assert event.evidence == f"gate-evaluation:{evaluation.pk}"
    assert (event.queue, event.actor) == (data.queue, ml_lead)
    assert event.after["verdict"] == evaluation.verdict


def test_the_snapshot_holds_no_nan_even_without_any_data(ml_lead):
    data = gate_data_build()
    evaluation = gate_evaluation_run(model_version=data.int8, actor=ml_lead)
    text = json.dumps(evaluation.snapshot, allow_nan=False)
    assert "NaN" not in text
    stored = GateEvaluation.objects.get(pk=evaluation.pk).snapshot
    json.dumps(stored, allow_nan=False)
    by_name = {c["name"]: c for c in stored["criteria"]}
    assert by_name["error_rate"]["value"] is None
    assert by_name["int8_parity"]["verdict"] == "insufficient"  # an INT8 version with no parity


def test_a_later_evaluation_leaves_the_earlier_snapshot_as_it_was(ml_lead, admin_user):
    data = _populated()
    first = gate_evaluation_run(model_version=data.fp32, actor=ml_lead)
    kept = json.dumps(first.snapshot, sort_keys=True)

    gate_policy_update(
        queue=data.queue, values={"window_days": 1, "anytime_valid": False}, actor=admin_user
    )
    gate_data_populate(data, seed=9, n=30, days=[services.utc_today()], prefix="later")
    second = gate_evaluation_run(model_version=data.fp32, actor=admin_user)

    first.refresh_from_db()
    assert json.dumps(first.snapshot, sort_keys=True) == kept
    assert first.policy.version == 1
    assert second.snapshot["policy"]["version"] == 2
    assert second.snapshot["window"]["days"] == 1
    assert second.snapshot["bounds_used"] == "fixed_sample"
    # The fixed-sample gate still shows the anytime-valid bounds beside its own.
    assert "mixture" in second.snapshot["bounds"]["anytime_valid"][1]["method"]
    assert (
        "Wilson" in {c["name"]: c for c in second.snapshot["criteria"]}["agreement_floor"]["method"]
    )
    assert gate_evaluation_latest(model_version=data.fp32) == second
    assert gate_evaluation_get(evaluation_id=first.pk) == first
    assert gate_evaluation_get(evaluation_id=10**9) is None
    assert gate_evaluation_latest(model_version=data.int8) is None


def test_the_document_is_the_snapshot_with_its_id(ml_lead):
    data = _populated()
    evaluation = gate_evaluation_run(model_version=data.fp32, actor=ml_lead)
    document = gate_evaluation_document(evaluation)
    assert document["id"] == evaluation.pk
    assert {k: v for k, v in document.items() if k != "id"} == evaluation.snapshot


def test_the_benchmarks_gate_timing_runs_the_evaluation_service(ml_lead):
    from bench.analytics import gate_evaluation_seconds

    data = _populated()
    seconds, summary = gate_evaluation_seconds(model_version=data.fp32, actor=ml_lead, repeats=2)
    assert 0 < seconds < 30
    assert summary.startswith("verdict fail,")
    assert "panel items" in summary
    assert GateEvaluation.objects.filter(model_version=data.fp32).count() == 2
