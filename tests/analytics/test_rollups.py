"""Reports from daily rollups equal the same figures computed from the raw rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import transaction
from django.db.models import Count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix

from analytics import services
from analytics.models import DailyRollup, ReferenceProfile
from analytics.selectors import ReportScope, report_agreement, scope_counts_gather
from analytics.stats.agreement import label_indices
from analytics.stats.binning import feature_histograms, reference_bins_with_range_by_feature
from analytics.stats.calibration import coverage_bins
from analytics.stats.counts import ROLLUP_FORMAT, PeriodCounts
from analytics.summaries.confidence import confidence_summary, operations_summary
from deployments.models import ModelVersion, Prediction
from inspections.models import Item, Judgment, Queue

pytestmark = pytest.mark.django_db(transaction=False)

LABELS = ["a", "b", "c"]
WIDTH = 3


def _setup(inspectors) -> tuple[Queue, ModelVersion]:
    queue = Queue.objects.create(
        name="Parts", slug="parts-rollup", labels=LABELS, input_width=WIDTH
    )
    version = ModelVersion.objects.create(
        queue=queue,
        name="m",
        version="1",
        onnx_file="models/m.onnx",
        sha256="0" * 64,
        size_bytes=1,
        labels=["c", "a", "b"],  # model order differs from the queue's on purpose
        input_width=WIDTH,
        input_name="x",
        probability_output="p",
    )
    reference = np.random.default_rng(0).normal(size=(500, WIDTH))
    bins = reference_bins_with_range_by_feature(reference)
    ReferenceProfile.objects.create(
        model_version=version,
        rows=500,
        fine_edges=[b.fine_edges[1:-1].tolist() for b in bins],
        coarse_edges=[b.coarse_edges[1:-1].tolist() for b in bins],
        feature_counts=[c.tolist() for c in feature_histograms(reference, bins)],
        prediction_counts=[200, 200, 100],
        format=ReferenceProfile.CURRENT_FORMAT,
        feature_minimum=[b.minimum for b in bins],
        feature_maximum=[b.maximum for b in bins],
        feature_categorical=[b.categorical for b in bins],
    )
    return queue, version


def _populate(draw, queue, version, inspectors, today) -> None:
    n = draw(st.integers(5, 25))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    for n_item in range(n):
        received = datetime.combine(today, datetime.min.time(), tzinfo=UTC) - timedelta(
            hours=float(rng.uniform(-10, 100))
        )
        needed = int(rng.integers(1, 3))
        item = Item.objects.create(
            queue=queue,
            external_id=f"i{n_item}",
            features=rng.normal(0.3, 1, WIDTH).round(3).tolist(),
            received_at=received,
            judgments_needed=needed,
        )
        judged = int(rng.integers(0, needed + 1))
        for who in inspectors[:judged]:
            Judgment.objects.create(
                item=item, inspector=who, label=str(rng.choice(LABELS)), seconds_spent=1.0
            )
        Item.objects.filter(pk=item.pk).update(
            judgment_count=judged,
            human_status="complete" if judged == needed else "pending",
        )
        outcome = rng.random()
        if outcome < 0.1:
            continue  # never scored
        if outcome < 0.2:
            Prediction.objects.create(
                item=item,
                model_version=version,
                status="error",
                reason="timeout: 3s",
                backend="fp32",
            )
        else:
            Prediction.objects.create(
                item=item,
                model_version=version,
                status="ok",
                label=str(rng.choice(LABELS)),
                confidence=float(rng.uniform(0.3, 1.0)),
                latency_ms=float(rng.uniform(0.1, 20)),
                backend="fp32",
            )
        Prediction.objects.filter(item=item).update(
            created_at=received + timedelta(seconds=float(rng.uniform(0.01, 60)))
        )


def _raw_figures(queue, version, since, until):
    """Compute agreement, confusion and confidence bins straight from the rows."""
    start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
    end = datetime.combine(until, datetime.min.time(), tzinfo=UTC) + timedelta(days=1)
    items = Item.objects.filter(queue=queue, received_at__gte=start, received_at__lt=end)
    predictions = {
        p.item_id: p for p in Prediction.objects.filter(model_version=version, item__in=items)
    }
    human_each, model_each, human_cons, model_cons, confidence = [], [], [], [], []
    for item in items.prefetch_related("judgments"):
        labels = [j.label for j in item.judgments.all()]
        prediction = predictions.get(item.pk)
        if prediction is None or prediction.status != "ok":
            continue
        human_each += labels
        model_each += [prediction.label] * len(labels)
        if item.human_status == "complete" and len(set(labels)) == 1:
            human_cons.append(labels[0])
            model_cons.append(prediction.label)
            confidence.append(prediction.confidence)
    features = np.array(
        [i.features for i in items if predictions.get(i.pk) and predictions[i.pk].status == "ok"]
    ).reshape(-1, WIDTH)
    return human_each, model_each, human_cons, model_cons, np.array(confidence), features


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_report_from_rollups_equals_report_from_raw_rows(data, inspector, inspector2):
    today = services.utc_today()
    with transaction.atomic():
        queue, version = _setup([inspector, inspector2])
        _populate(data.draw, queue, version, [inspector, inspector2], today)
        assert services.rollups_refresh(today=today) >= 1
        since = today - timedelta(days=6)
        scope = ReportScope(queue=queue, model_version=version, since=since, until=today)
        report = report_agreement(scope=scope)
        consensus = report_agreement(scope=scope, rule="consensus")
        total = scope_counts_gather(scope=scope).total

        human, model, human_c, model_c, confidence, features = _raw_figures(
            queue, version, since, today
        )
        assert report.agreement.n == len(human)
        if human:
            assert report.agreement.rate == pytest.approx(accuracy_score(human, model))
            assert report.confusion == confusion_matrix(human, model, labels=LABELS).tolist()
        if len(set(human_c) | set(model_c)) > 1:
            assert consensus.kappa.value == pytest.approx(cohen_kappa_score(human_c, model_c))
        assert consensus.agreement.n == len(human_c)
        agree = np.array(human_c) == np.array(model_c)
        raw_bins = coverage_bins(confidence, agree)
        assert total.coverage is not None
        assert np.array_equal(total.coverage.count, raw_bins.count)
        assert np.array_equal(total.coverage.correct, raw_bins.correct)
        assert confidence_summary(total=total).n == len(human_c)
        bins = scope_counts_gather(scope=scope).bins
        assert bins is not None and total.features is not None
        for mine, raw in zip(total.features, feature_histograms(features, bins), strict=True):
            assert np.array_equal(mine, raw)
        assert total.feature_extremes is not None
        if len(features):
            assert total.feature_extremes.minimum.tolist() == features.min(axis=0).tolist()
            assert total.feature_extremes.maximum.tolist() == features.max(axis=0).tolist()
        else:
            assert np.all(np.isinf(total.feature_extremes.maximum))
        assert (
            total.items
            == Item.objects.filter(queue=queue).count()
            - Item.objects.filter(
                queue=queue,
                received_at__lt=datetime.combine(since, datetime.min.time(), tzinfo=UTC),
            ).count()
            - Item.objects.filter(
                queue=queue,
                received_at__gte=datetime.combine(today, datetime.min.time(), tzinfo=UTC)
                + timedelta(days=1),
            ).count()
        )
        in_range = Item.objects.filter(
            queue=queue,
            received_at__gte=datetime.combine(since, datetime.min.time(), tzinfo=UTC),
            received_at__lt=datetime.combine(today, datetime.min.time(), tzinfo=UTC)
            + timedelta(days=1),
        )
        assert total.judgments == Judgment.objects.filter(item__in=in_range).count()
        assert (
            total.multi_judged == in_range.annotate(n=Count("judgments")).filter(n__gte=2).count()
        )
        operations = operations_summary(total=total, labels=LABELS)
        assert (
            operations.errors
            == Prediction.objects.filter(
                model_version=version, status="error", item__in=Item.objects.filter(queue=queue)
            )
            .filter(item__received_at__gte=datetime.combine(since, datetime.min.time(), tzinfo=UTC))
            .count()
        )
        transaction.set_rollback(True)


def test_recomputing_a_day_replaces_its_rollup(inspector):
    queue, version = _setup([inspector])
    day = services.utc_today() - timedelta(days=2)
    first = services.rollup_compute(model_version=version, day=day)
    Item.objects.create(
        queue=queue,
        external_id="late",
        features=[0.0] * WIDTH,
        received_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1),
    )
    second = services.rollup_compute(model_version=version, day=day)
    assert first.pk == second.pk
    assert DailyRollup.objects.filter(model_version=version, day=day).count() == 1
    assert (first.items, second.items) == (0, 1)


def test_the_open_day_is_never_rolled_up(inspector):
    _, version = _setup([inspector])
    with pytest.raises(ValueError, match="not closed"):
        services.rollup_compute(model_version=version, day=services.utc_today())


def test_rollup_json_round_trip_keeps_every_count(inspector):
    _, version = _setup([inspector])
    day = services.utc_today() - timedelta(days=1)
    rollup = services.rollup_compute(model_version=version, day=day)
    from analytics.stats.counts import period_counts_from_json, period_counts_to_json

    counts = period_counts_from_json(rollup.counts)
    assert isinstance(counts, PeriodCounts)
    assert period_counts_to_json(counts) == rollup.counts
    assert label_indices(["a"], LABELS).tolist() == [0]


def test_a_rollup_stored_in_an_older_format_is_read_live_then_recomputed(inspector):
    queue, version = _setup([inspector])
    day = services.utc_today() - timedelta(days=20)
    Item.objects.create(
        queue=queue,
        external_id="old",
        features=[0.0] * WIDTH,
        received_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1),
    )
    Prediction.objects.create(
        item=Item.objects.get(external_id="old"),
        model_version=version,
        status="ok",
        label="a",
        confidence=0.9,
        latency_ms=1.0,
        backend="fp32",
    )
    rollup = services.rollup_compute(model_version=version, day=day)
    # What a previous release stored: no format mark, and counts this code cannot trust.
    stale = {k: v for k, v in rollup.counts.items() if k not in ("format", "judgments")}
    DailyRollup.objects.filter(pk=rollup.pk).update(counts={**stale, "items": 999})

    scope = ReportScope(queue=queue, model_version=version, since=day, until=day)
    assert scope_counts_gather(scope=scope).total.items == 1

    assert services.rollups_refresh() >= 1
    rollup.refresh_from_db()
    assert rollup.counts["format"] == ROLLUP_FORMAT
    assert rollup.counts["items"] == 1


def test_rows_changed_in_storage_are_left_out_of_the_feature_counts(inspector):
    queue, version = _setup([inspector])
    day = services.utc_today() - timedelta(days=1)
    received = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(hours=2)
    good = [[0.1, -0.5, 2.0], [1.5, 0.0, -1.0]]
    stored = [*good, [1.0, 2.0], [1.0, "x", 2.0]]  # wrong width; not a number
    for n, features in enumerate(stored):
        item = Item.objects.create(
            queue=queue, external_id=f"s{n}", features=[0.0] * WIDTH, received_at=received
        )
        # Intake would refuse these; they stand for rows edited in the database since.
        Item.objects.filter(pk=item.pk).update(features=features)
        Prediction.objects.create(
            item=item, model_version=version, status="ok", label="a", confidence=0.9
        )

    rollup = services.rollup_compute(model_version=version, day=day)

    assert rollup.counts["feature_extremes"] == [[0.1, 1.5], [-0.5, 0.0], [-1.0, 2.0]]
    profile = ReferenceProfile.objects.get(model_version=version)
    bins = services.profile_bins(profile)
    expected = feature_histograms(np.array(good), bins)
    assert [np.asarray(f).tolist() for f in rollup.counts["features"]] == [
        e.tolist() for e in expected
    ]
    assert rollup.counts["scored_ok"] == 4
