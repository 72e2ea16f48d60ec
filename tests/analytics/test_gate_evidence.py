"""The gate's evidence from rollups equals the same evidence from raw rows, and references agree."""

from __future__ import annotations

import re
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, recall_score
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from analytics import services
from analytics.gate.evidence import gate_evidence_gather
from analytics.gate.inputs import GateEvidence, GatePolicyValues
from analytics.gate.rules import gate_evaluate
from analytics.models import DailyRollup
from analytics.selectors import ReportScope, report_drift
from deployments.models import ModelVersion, Prediction
from inspections.models import Item
from tests.analytics.gate_data import LABELS, gate_data_build, gate_data_populate

pytestmark = pytest.mark.django_db


def _raw(version: ModelVersion, since, until) -> dict:
    """Return the evidence's figures computed straight from the rows, without any rollup."""
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(until, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
    items = Item.objects.filter(
        queue=version.queue, received_at__gte=start, received_at__lt=end
    ).order_by("received_at", "id")
    predictions = {
        p.item_id: p for p in Prediction.objects.filter(model_version=version, item__in=items)
    }
    human, model, paired, latencies = [], [], [], []
    for item in items.prefetch_related("judgments"):
        prediction = predictions.get(item.pk)
        if prediction is None:
            continue
        if prediction.latency_ms is not None:
            latencies.append(prediction.latency_ms)
        if prediction.status != "ok":
            continue
        labels = [j.label for j in item.judgments.all()]
        human += labels
        model += [prediction.label] * len(labels)
        m = len(labels)
        if m >= 2 and item.human_status == "complete":
            agree = sum(label == prediction.label for label in labels) / m
            pairs = [labels[i] == labels[j] for i in range(m) for j in range(i + 1, m)]
            paired.append(agree - sum(pairs) / len(pairs))
    rows = list(predictions.values())
    return {
        "human": human,
        "model": model,
        "paired": paired,
        "predictions": len(rows),
        "errors": sum(p.status == "error" for p in rows),
        "latencies": latencies,
    }


def _raw_parity(data, since, until) -> float:
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(until, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
    ok = Prediction.objects.filter(
        status="ok", item__received_at__gte=start, item__received_at__lt=end
    )
    fp32 = dict(ok.filter(model_version=data.fp32).values_list("item_id", "label"))
    int8 = dict(ok.filter(model_version=data.int8).values_list("item_id", "label"))
    both = fp32.keys() & int8.keys()
    return sum(fp32[i] == int8[i] for i in both) / len(both)


def _assert_same(first: GateEvidence, second: GateEvidence) -> None:
    for field in fields(GateEvidence):
        mine, theirs = getattr(first, field.name), getattr(second, field.name)
        if isinstance(mine, np.ndarray):
            assert np.array_equal(mine, theirs), field.name
        else:
            assert mine == theirs, field.name


@pytest.mark.parametrize("seed", [1, 2])
def test_evidence_from_rollups_equals_evidence_from_raw_rows(seed):
    data = gate_data_build()
    today = services.utc_today()
    since = today - timedelta(days=2)
    gate_data_populate(data, seed=seed, n=90, days=[since, since + timedelta(days=1), today])
    # Items before the window, which must not count.
    gate_data_populate(data, seed=seed, n=5, days=[since - timedelta(days=1)], prefix="early")
    assert services.rollups_refresh(today=today) >= 4  # two versions, three closed days

    evidence = gate_evidence_gather(model_version=data.fp32, since=since, until=today)
    raw = _raw(data.fp32, since, today)

    assert evidence.labels == tuple(LABELS)
    assert np.array_equal(
        evidence.confusion, confusion_matrix(raw["human"], raw["model"], labels=LABELS)
    )
    assert evidence.paired_differences.tolist() == pytest.approx(raw["paired"])
    assert len(raw["paired"]) > 5
    assert (evidence.predictions, evidence.errors) == (raw["predictions"], raw["errors"])
    exact_p95 = float(np.percentile(raw["latencies"], 95))
    assert evidence.latency_p95_ms is not None
    assert exact_p95 / 1.13 < evidence.latency_p95_ms < exact_p95 * 1.13
    drift = report_drift(
        scope=ReportScope(queue=data.queue, model_version=data.fp32, since=since, until=today)
    )
    assert evidence.max_psi == max(f.psi for f in drift.features)
    assert evidence.drifted_share == drift.drifted_share
    assert (evidence.is_int8, evidence.int8_parity) == (False, None)

    int8 = gate_evidence_gather(model_version=data.int8, since=since, until=today)
    assert int8.is_int8
    assert int8.int8_parity == pytest.approx(_raw_parity(data, since, today))
    assert int8.int8_parity < 1.0
    assert (int8.max_psi, int8.drifted_share) == (None, None)  # no reference profile

    DailyRollup.objects.all().delete()
    _assert_same(gate_evidence_gather(model_version=data.fp32, since=since, until=today), evidence)
    _assert_same(gate_evidence_gather(model_version=data.int8, since=since, until=today), int8)


def test_evidence_of_an_empty_window_has_no_figures_rather_than_nan():
    data = gate_data_build()
    today = services.utc_today()
    evidence = gate_evidence_gather(model_version=data.fp32, since=today, until=today)
    assert int(evidence.confusion.sum()) == 0
    assert evidence.paired_differences.size == 0
    assert (evidence.predictions, evidence.latency_p95_ms, evidence.int8_parity) == (0, None, None)
    assert evidence.max_psi is None


def test_gate_figures_on_gathered_evidence_equal_statsmodels_and_scikit_learn():
    data = gate_data_build()
    today = services.utc_today()
    days = [today - timedelta(days=offset) for offset in range(3)]
    gate_data_populate(data, seed=7, n=150, days=days)
    services.rollups_refresh(today=today)
    evidence = gate_evidence_gather(model_version=data.fp32, since=days[-1], until=today)
    raw = _raw(data.fp32, days[-1], today)
    policy = GatePolicyValues(
        min_judged_items=None, min_per_label=None, recall_min_items=5, anytime_valid=False
    )

    result = gate_evaluate(policy=policy, evidence=evidence)
    by_name = {c.name: c for c in result.criteria}

    human, model = raw["human"], raw["model"]
    agreement = by_name["agreement_floor"]
    agreed = sum(h == m for h, m in zip(human, model, strict=True))
    assert agreement.value == pytest.approx(accuracy_score(human, model))
    assert (agreement.lower, agreement.upper) == pytest.approx(
        proportion_confint(agreed, len(human), alpha=0.10, method="wilson")
    )
    assert by_name["kappa_floor"].value == pytest.approx(cohen_kappa_score(human, model))
    recall = by_name["per_label_recall"]
    deciding = re.match(r"label (\S+) recall", recall.detail).group(1)
    recalls = recall_score(human, model, labels=LABELS, average=None)
    assert recall.value == pytest.approx(recalls[LABELS.index(deciding)])
    assert recall.lower == pytest.approx(
        proportion_confint(
            sum(h == m == deciding for h, m in zip(human, model, strict=True)),
            human.count(deciding),
            alpha=0.10,
            method="wilson",
        )[0]
    )
    noninferiority = by_name["noninferiority"]
    assert noninferiority.value == pytest.approx(np.mean(raw["paired"]))
    assert (noninferiority.lower, noninferiority.upper) == pytest.approx(
        DescrStatsW(np.asarray(raw["paired"])).tconfint_mean(alpha=0.10)
    )
    assert by_name["error_rate"].value == pytest.approx(raw["errors"] / raw["predictions"])
