"""A canary's evidence on its own audit sample: the raw path's figures on those items only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.utils import timezone

from analytics import services
from analytics.gate.audit_evaluation import gate_evaluation_audit_latest, gate_evaluation_audit_run
from analytics.gate.audit_evidence import audit_evidence_gather
from analytics.gate.evidence import gate_evidence_gather
from analytics.stats.counts import LATENCY_EDGES_MS, log_histogram, percentile_from_histogram
from deployments.models import Decision, Prediction
from inspections.models import Item
from tests.analytics.gate_data import gate_data_build, gate_data_populate

pytestmark = pytest.mark.django_db


def _decide(data, *, since: datetime, seed: int) -> None:
    """Give the window's items the decisions a canary (fp32) made at intake, some audited.

    Items the fp32 version scored are decided with its prediction (half of them audited),
    its errors are failed decisions; a few items went to the other version (int8), audited
    too, and must not count.
    """
    rng = np.random.default_rng(seed)
    for item in Item.objects.filter(queue=data.queue, received_at__gte=since).order_by("id"):
        prediction = Prediction.objects.filter(item=item, model_version=data.fp32).first()
        if prediction is None:
            continue
        other = rng.random() < 0.1
        version = data.int8 if other else data.fp32
        if prediction.status == "ok":
            Decision.objects.create(
                item=item,
                model_version=version,
                role="canary",
                outcome="decided",
                label=prediction.label,
                confidence=prediction.confidence,
                latency_ms=prediction.latency_ms or 0.0,
                created_at=item.received_at,
            )
            audited = other or rng.random() < 0.5
        else:
            Decision.objects.create(
                item=item,
                model_version=version,
                role="canary",
                outcome="failed",
                reason="timeout: 50 ms",
                latency_ms=50.0,
                created_at=item.received_at,
            )
            audited = other
        Item.objects.filter(pk=item.pk).update(audit_sample=audited)


@pytest.fixture
def canary_window():
    data = gate_data_build()
    yesterday = services.utc_today() - timedelta(days=1)
    gate_data_populate(data, seed=3, n=160, days=[yesterday])
    start = datetime.combine(yesterday, datetime.min.time(), tzinfo=UTC)
    since = start + timedelta(hours=2)  # the canary took its step two hours into the day
    _decide(data, since=since, seed=3)
    return data, yesterday, since


def test_audit_evidence_equals_the_raw_path_on_the_audit_items_alone(canary_window):
    data, yesterday, since = canary_window
    now = timezone.now()
    window = Decision.objects.filter(model_version=data.fp32, created_at__gte=since)
    latencies = list(window.values_list("latency_ms", flat=True))

    sample = audit_evidence_gather(model_version=data.fp32, since=since, until=now)
    evidence = sample.evidence

    audited = Item.objects.filter(
        audit_sample=True,
        received_at__gte=since,
        decision__model_version=data.fp32,
        decision__outcome="decided",
    )
    assert sample.audit_items == audited.count() > 30
    assert sample.decisions == {
        "decided": window.filter(outcome="decided").count(),
        "deferred": 0,
        "failed": window.filter(outcome="failed").count(),
    }
    assert (evidence.predictions, evidence.errors) == (window.count(), sample.decisions["failed"])
    assert sample.decisions["failed"] > 0
    assert evidence.latency_p95_ms == pytest.approx(
        percentile_from_histogram(log_histogram(latencies, LATENCY_EDGES_MS), LATENCY_EDGES_MS, 95)
    )
    # Keep only the audit items: the raw path over the queue then reads exactly them.
    Item.objects.exclude(pk__in=audited.values("pk")).delete()
    raw = gate_evidence_gather(model_version=data.fp32, since=yesterday, until=yesterday)

    assert np.array_equal(evidence.confusion, raw.confusion)
    assert int(evidence.confusion.sum()) > 30
    assert evidence.paired_differences.tolist() == raw.paired_differences.tolist()
    assert evidence.paired_differences.size > 3
    assert evidence.max_psi == raw.max_psi and evidence.max_psi is not None
    assert evidence.drifted_share == raw.drifted_share
    assert (evidence.int8_parity, evidence.is_int8) == (None, False)


def test_audit_evidence_reads_nothing_before_the_step_or_of_another_version(canary_window):
    data, _, since = canary_window
    later = audit_evidence_gather(
        model_version=data.fp32, since=since + timedelta(hours=30), until=timezone.now()
    )
    assert (later.audit_items, later.judged_items, sum(later.decisions.values())) == (0, 0, 0)
    assert int(later.evidence.confusion.sum()) == 0
    assert later.evidence.latency_p95_ms is None and later.evidence.max_psi is None
    other = audit_evidence_gather(model_version=data.int8, since=since, until=timezone.now())
    assert (
        other.audit_items
        == Item.objects.filter(
            audit_sample=True, decision__model_version=data.int8, decision__outcome="decided"
        ).count()
    )


def test_an_audit_evaluation_is_stored_as_such_and_says_what_it_did_not_measure(canary_window):
    data, _, since = canary_window

    evaluation = gate_evaluation_audit_run(model_version=data.int8, since=since)

    assert evaluation.sample == "audit"
    snapshot = evaluation.snapshot
    assert snapshot["sample"] == "audit"
    assert snapshot["window"]["since"] == since.isoformat()
    assert snapshot["audit"]["audit_items"] > 0
    by_name = {c["name"]: c for c in snapshot["criteria"]}
    assert by_name["int8_parity"]["verdict"] == "off"
    assert by_name["int8_parity"]["detail"].startswith("not measured on the audit sample")
    assert by_name["noninferiority"]["verdict"] == "off"
    assert "not measured on the audit sample" in by_name["noninferiority"]["detail"]
    # A handful of audit items is not enough for the default policy's 500 judged items.
    assert evaluation.verdict == "insufficient"
    assert gate_evaluation_audit_latest(model_version=data.int8, since=since) == evaluation
    assert gate_evaluation_audit_latest(model_version=data.fp32, since=since) is None


def test_the_gate_page_says_an_evaluation_read_the_audit_sample(canary_window, client_for, ml_lead):
    data, _, since = canary_window
    gate_evaluation_audit_run(model_version=data.fp32, since=since)
    html = client_for(ml_lead).get("/rollout/parts-gate/gate/m:1/").content.decode()
    assert (
        "over its audit sample as a canary (items it decided that inspectors also judged)" in html
    )
    assert "Not measured on the audit sample: " in html
