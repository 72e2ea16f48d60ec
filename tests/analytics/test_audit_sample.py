"""The audit sample: rollups of a version's audit items equal the raw figures on those items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

from analytics import services
from analytics.models import DailyRollup
from analytics.selectors import (
    ReportScope,
    report_agreement,
    report_confidence,
    report_operations,
    scope_counts_gather,
)
from analytics.stats.binning import feature_histograms
from analytics.stats.calibration import coverage_bins
from deployments.models import Prediction
from inspections.models import Item, Judgment
from tests.analytics.audit_data import (
    LABELS,
    WIDTH,
    audit_data_build,
    audit_data_populate,
    audit_item_ids,
)

pytestmark = pytest.mark.django_db


def _day_start(day):
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC)


def _raw(version, ids):
    """Return agreement tables, confidence bins, features and counts of these items, raw."""
    predictions = {p.item_id: p for p in Prediction.objects.filter(model_version=version)}
    human_each, model_each, human_cons, model_cons, confidence, features = [], [], [], [], [], []
    errors = 0
    items = Item.objects.filter(pk__in=ids).prefetch_related("judgments")
    for item in items:
        prediction = predictions.get(item.pk)
        if prediction is None:
            continue
        if prediction.status != "ok":
            errors += 1
            continue
        features.append(item.features)
        labels = [j.label for j in item.judgments.all()]
        human_each += labels
        model_each += [prediction.label] * len(labels)
        if item.human_status == "complete" and len(set(labels)) == 1:
            human_cons.append(labels[0])
            model_cons.append(prediction.label)
            confidence.append(prediction.confidence)
    return {
        "human_each": human_each,
        "model_each": model_each,
        "human_cons": human_cons,
        "model_cons": model_cons,
        "confidence": np.array(confidence),
        "features": np.array(features, dtype=np.float64).reshape(-1, WIDTH),
        "errors": errors,
        "judgments": Judgment.objects.filter(item__in=ids).count(),
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_audit_rollups_equal_the_raw_figures_of_the_audit_items(seed):
    data = audit_data_build()
    today = services.utc_today()
    days = [today - timedelta(days=d) for d in (4, 3, 1, 0)]
    audit_data_populate(data, seed=seed, n=160, days=days)
    assert services.rollups_refresh(today=today) >= 1
    since = today - timedelta(days=5)

    for version in (data.live, data.canary):
        scope = ReportScope(
            queue=data.queue, model_version=version, since=since, until=today, sample="audit"
        )
        gathered = scope_counts_gather(scope=scope)
        total = gathered.total
        ids = audit_item_ids(data, version)
        raw = _raw(version, ids)
        assert 0 < len(ids) < Item.objects.filter(queue=data.queue).count()
        assert total.items == len(ids)
        assert total.judgments == raw["judgments"]
        assert total.scored_error == raw["errors"]
        assert (
            total.confusion_each.tolist()
            == confusion_matrix(raw["human_each"], raw["model_each"], labels=LABELS).tolist()
        )
        agreement = report_agreement(scope=scope, gathered=gathered)
        assert agreement.agreement.rate == pytest.approx(
            accuracy_score(raw["human_each"], raw["model_each"])
        )
        consensus = report_agreement(scope=scope, rule="consensus", gathered=gathered)
        assert consensus.agreement.n == len(raw["human_cons"])
        assert consensus.kappa.value == pytest.approx(
            cohen_kappa_score(raw["human_cons"], raw["model_cons"])
        )
        agree = np.array(raw["human_cons"]) == np.array(raw["model_cons"])
        bins = coverage_bins(raw["confidence"], agree)
        assert total.coverage is not None
        assert np.array_equal(total.coverage.count, bins.count)
        assert np.array_equal(total.coverage.correct, bins.correct)
        assert gathered.bins is not None and total.features is not None
        for mine, expected in zip(
            total.features, feature_histograms(raw["features"], gathered.bins), strict=True
        ):
            assert np.array_equal(mine, expected)
        assert report_operations(scope=scope, gathered=gathered).errors == raw["errors"]
        # The closed days came from stored audit rollups, the open day was aggregated now.
        stored = set(
            DailyRollup.objects.filter(model_version=version, sample="audit").values_list(
                "day", flat=True
            )
        )
        assert stored and stored <= set(days) - {today}


def test_a_day_has_an_audit_rollup_only_when_the_version_has_audit_items_that_day():
    data = audit_data_build()
    today = services.utc_today()
    busy, quiet = today - timedelta(days=2), today - timedelta(days=1)
    audit_data_populate(data, seed=5, n=60, days=[busy], deciders=("canary",))
    audit_data_populate(data, seed=6, n=20, days=[quiet], prefix="q", deciders=())
    services.rollups_refresh(today=today)

    audit = DailyRollup.objects.filter(sample="audit")
    assert list(audit.values_list("model_version", "day")) == [(data.canary.pk, busy)]
    rollup = audit.get()
    assert rollup.items == len(audit_item_ids(data, data.canary))
    # Every version with predictions has its every-item rollups, the audit ones beside them.
    for version in (data.live, data.canary, data.shadow):
        assert set(
            DailyRollup.objects.filter(model_version=version, sample="all").values_list(
                "day", flat=True
            )
        ) == {busy, quiet}


def test_recomputing_a_day_whose_audit_items_are_gone_removes_its_audit_rollup():
    data = audit_data_build()
    day = services.utc_today() - timedelta(days=1)
    audit_data_populate(data, seed=7, n=40, days=[day], deciders=("live",))
    services.rollup_compute(model_version=data.live, day=day)
    assert DailyRollup.objects.filter(model_version=data.live, sample="audit").exists()

    Item.objects.filter(queue=data.queue).update(audit_sample=False)
    services.rollup_compute(model_version=data.live, day=day)

    assert not DailyRollup.objects.filter(model_version=data.live, sample="audit").exists()
    assert DailyRollup.objects.filter(model_version=data.live, sample="all").count() == 1


def test_a_version_that_decided_nothing_has_an_empty_audit_sample_with_a_sentence():
    data = audit_data_build()
    today = services.utc_today()
    audit_data_populate(data, seed=8, n=40, days=[today - timedelta(days=1), today])
    scope = ReportScope(
        queue=data.queue,
        model_version=data.shadow,
        since=today - timedelta(days=3),
        until=today,
        sample="audit",
    )
    gathered = scope_counts_gather(scope=scope)
    assert gathered.total.items == 0
    assert len(gathered.days) == 4
    confidence = report_confidence(scope=scope, gathered=gathered)
    assert confidence.empty_reason.startswith("No audit items yet: m:3 decided no item")
    assert report_agreement(scope=scope).empty_reason == confidence.empty_reason
    # Every item is still there for the same version.
    every = scope_counts_gather(scope=ReportScope(**{**scope.__dict__, "sample": "all"}))
    assert every.total.items == 40


def test_a_day_rolled_up_without_audit_items_is_read_as_empty_not_aggregated_again(
    django_assert_max_num_queries,
):
    data = audit_data_build()
    today = services.utc_today()
    days = [today - timedelta(days=d) for d in range(1, 8)]
    audit_data_populate(data, seed=9, n=70, days=days, deciders=())
    audit_data_populate(data, seed=10, n=5, days=[days[0]], prefix="c", deciders=("canary",))
    services.rollups_refresh(today=today)
    scope = ReportScope(
        queue=data.queue,
        model_version=data.canary,
        since=days[-1],
        until=days[0],
        sample="audit",
    )
    # A handful of look-ups, whatever the number of days: no day is aggregated live.
    with django_assert_max_num_queries(5):
        gathered = scope_counts_gather(scope=scope, with_features=False)
    assert gathered.total.items == len(audit_item_ids(data, data.canary))
