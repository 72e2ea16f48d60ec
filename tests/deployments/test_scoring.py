"""Shadow scoring called directly (the worker path without a broker)."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments import scoring, sweeper
from deployments.models import Deployment, Prediction, ScoringAttempt
from deployments.runtime import ModelRunner, runners_clear
from deployments.scoring_message import features_pack, features_unpack
from inspections.models import Item
from inspections.services import item_create, items_create_bulk

pytestmark = pytest.mark.django_db


def _backdate(item, delta):
    """Pretend the item (and the shadow deployment before it) arrived delta ago."""
    Deployment.objects.update(started_at=timezone.now() - delta - timedelta(hours=1))
    Item.objects.filter(pk=item.pk).update(received_at=timezone.now() - delta)


def _items(queue, rows, prefix="i"):
    return [
        item_create(queue=queue, external_id=f"{prefix}{n}", features=[float(v) for v in row])
        for n, row in enumerate(rows)
    ]


def test_scoring_stores_one_prediction_per_item_matching_onnx_runtime(
    shadow_model, queue, digit_rows
):
    items = _items(queue, digit_rows[:20])
    summary = scoring.predictions_score(
        model_version_id=shadow_model.pk, item_ids=[item.pk for item in items]
    )
    assert summary.scored == 20 and summary.errors == 0
    runner = ModelRunner(
        shadow_model.onnx_file.path,
        input_name=shadow_model.input_name,
        probability_output=shadow_model.probability_output,
        input_width=64,
    )
    expected = runner.predict(digit_rows[:20])
    stored = {p.item_id: p for p in Prediction.objects.filter(model_version=shadow_model)}
    for offset, item in enumerate(items):
        prediction = stored[item.pk]
        assert prediction.status == "ok"
        assert prediction.label == shadow_model.labels[expected.label_indices[offset]]
        assert prediction.confidence == pytest.approx(
            expected.probabilities[offset].max(), abs=1e-5
        )
        assert np.allclose(prediction.probabilities, expected.probabilities[offset], atol=1e-5)
        assert prediction.backend == "fp32"
        assert prediction.latency_ms > 0


def test_scoring_twice_changes_nothing(shadow_model, queue, digit_rows):
    ids = [item.pk for item in _items(queue, digit_rows[:5])]
    scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=ids)
    first = list(Prediction.objects.order_by("id").values())
    again = scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=ids + ids)
    assert again.scored == 0
    assert list(Prediction.objects.order_by("id").values()) == first


def test_batch_results_equal_one_by_one_results(shadow_model, queue, digit_rows):
    ids = [item.pk for item in _items(queue, digit_rows[:30])]
    scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=ids)
    batch = dict(Prediction.objects.values_list("item_id", "probabilities"))
    Prediction.objects.all().delete()
    for item_id in ids:
        scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=[item_id])
    single = dict(Prediction.objects.values_list("item_id", "probabilities"))
    assert batch.keys() == single.keys()
    for item_id in ids:
        assert np.allclose(batch[item_id], single[item_id], atol=1e-5)


def test_item_with_corrupted_features_becomes_an_error_prediction(shadow_model, queue, digit_rows):
    good, bad = _items(queue, digit_rows[:2])
    Item.objects.filter(pk=bad.pk).update(features=[1.0, 2.0])
    summary = scoring.predictions_score(
        model_version_id=shadow_model.pk, item_ids=[good.pk, bad.pk]
    )
    assert (summary.scored, summary.errors) == (1, 1)
    error = Prediction.objects.get(item=bad)
    assert error.status == "error"
    assert "2 features" in error.reason and "64" in error.reason
    assert Prediction.objects.get(item=good).status == "ok"


def test_unloadable_model_file_gives_error_predictions_not_a_crash(shadow_model, queue, digit_rows):
    (item,) = _items(queue, digit_rows[:1])
    runners_clear()
    with open(shadow_model.onnx_file.path, "wb") as handle:
        handle.write(b"not onnx any more")
    summary = scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=[item.pk])
    assert summary.errors == 1
    assert "could not be loaded" in Prediction.objects.get(item=item).reason


def test_commit_queues_each_new_item_for_every_shadow_model(
    shadow_model, queue, digit_rows, django_capture_on_commit_callbacks
):
    with (
        mock.patch("deployments.tasks.score_items.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        item = item_create(queue=queue, external_id="x", features=list(digit_rows[0]))
    delay.assert_called_once()
    assert delay.call_args.args == (shadow_model.pk, [item.pk])
    assert features_unpack(delay.call_args.kwargs["features"], 64).tolist() == [item.features]
    assert delay.call_args.kwargs["received"] == [item.received_at.timestamp()]


def test_bulk_intake_queues_items_in_batches(
    shadow_model, queue, digit_rows, settings, django_capture_on_commit_callbacks
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "SCORING_BATCH_SIZE": 7}
    rows = [(f"b{n}", list(map(float, row))) for n, row in enumerate(digit_rows[:20])]
    with (
        mock.patch("deployments.tasks.score_items.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = items_create_bulk(queue=queue, rows=rows)
    assert result.created == 20
    sizes = [len(call.args[1]) for call in delay.call_args_list]
    assert sizes == [7, 7, 6]


def test_broker_outage_at_intake_keeps_the_item(
    shadow_model, queue, digit_rows, django_capture_on_commit_callbacks
):
    with (
        mock.patch("deployments.tasks.score_items.delay", side_effect=ConnectionError("down")),
        django_capture_on_commit_callbacks(execute=True),
    ):
        item = item_create(queue=queue, external_id="kept", features=list(digit_rows[0]))
    assert Item.objects.filter(pk=item.pk).exists()


def test_sweeper_requeues_lost_items_then_gives_up_with_a_reason(
    shadow_model, queue, digit_rows, settings
):
    settings.SHADOWLAB = {
        **settings.SHADOWLAB,
        "SCORING_MAX_ATTEMPTS": 3,
        "SWEEP_GRACE_SECONDS": 60,
    }
    (item,) = _items(queue, digit_rows[:1])
    _backdate(item, timedelta(minutes=5))
    now = timezone.now()
    with mock.patch("deployments.tasks.score_items.delay") as delay:
        assert sweeper.unscored_sweep(now=now).requeued == 1
        delay.assert_called_once_with(shadow_model.pk, [item.pk])
        # Within the grace period after a re-queue nothing is sent again.
        assert sweeper.unscored_sweep(now=now + timedelta(seconds=10)).requeued == 0
        assert sweeper.unscored_sweep(now=now + timedelta(minutes=2)).requeued == 1
        summary = sweeper.unscored_sweep(now=now + timedelta(minutes=4))
    assert (summary.requeued, summary.gave_up) == (0, 1)
    error = Prediction.objects.get(item=item)
    assert error.status == "error" and "after 3 attempts" in error.reason
    assert ScoringAttempt.objects.get(item=item).attempts == 3


def test_sweeper_does_not_spend_attempts_while_the_broker_is_down(shadow_model, queue, digit_rows):
    (item,) = _items(queue, digit_rows[:1])
    _backdate(item, timedelta(hours=1))
    with mock.patch(
        "deployments.tasks.score_items.delay", side_effect=ConnectionError("down")
    ) as delay:
        for _ in range(10):
            sweeper.unscored_sweep()
    assert delay.call_count == 10
    assert not ScoringAttempt.objects.exists()
    assert not Prediction.objects.exists()


def test_a_message_carrying_features_is_scored_without_reading_the_items(
    shadow_model, queue, digit_rows
):
    items = _items(queue, digit_rows[:8])
    Item.objects.filter(pk=items[0].pk).update(features=[0.0])  # not what the message says
    with CaptureQueriesContext(connection) as queries:
        summary = scoring.predictions_score(
            model_version_id=shadow_model.pk,
            item_ids=[item.pk for item in items],
            features=features_pack([row.tolist() for row in digit_rows[:8]]),
            received=[item.received_at.timestamp() for item in items],
        )
    assert (summary.scored, summary.errors, summary.skipped) == (8, 0, 0)
    assert Prediction.objects.filter(status="ok").count() == 8
    assert not [q["sql"] for q in queries.captured_queries if "features" in q["sql"]]


def test_a_redelivered_message_stores_nothing_new(shadow_model, queue, digit_rows):
    items = _items(queue, digit_rows[:4])
    message = {
        "model_version_id": shadow_model.pk,
        "item_ids": [item.pk for item in items],
        "features": features_pack([row.tolist() for row in digit_rows[:4]]),
        "received": [item.received_at.timestamp() for item in items],
    }
    scoring.predictions_score(**message)
    first = list(Prediction.objects.order_by("id").values())
    again = scoring.predictions_score(**message)
    assert again.skipped == 4
    assert list(Prediction.objects.order_by("id").values()) == first


def test_a_message_for_a_deleted_item_scores_the_others(shadow_model, queue, digit_rows):
    kept, deleted = _items(queue, digit_rows[:2])
    deleted_id = deleted.pk
    deleted.delete()
    scoring.predictions_score(
        model_version_id=shadow_model.pk,
        item_ids=[kept.pk, deleted_id],
        features=features_pack([row.tolist() for row in digit_rows[:2]]),
        received=[kept.received_at.timestamp()] * 2,
    )
    assert list(Prediction.objects.values_list("item_id", flat=True)) == [kept.pk]


def test_a_malformed_message_falls_back_to_the_stored_features(shadow_model, queue, digit_rows):
    (item,) = _items(queue, digit_rows[:1])
    summary = scoring.predictions_score(
        model_version_id=shadow_model.pk,
        item_ids=[item.pk],
        features=features_pack([[1.0, 2.0]]),
        received=[item.received_at.timestamp()],
    )
    assert summary.scored == 1
    assert Prediction.objects.get(item=item).status == "ok"


def test_attempts_are_recorded_on_the_prediction(shadow_model, queue, digit_rows):
    (item,) = _items(queue, digit_rows[:1])
    ScoringAttempt.objects.create(
        item=item, model_version=shadow_model, attempts=3, last_queued_at=timezone.now()
    )
    scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=[item.pk])
    assert Prediction.objects.get(item=item).attempts == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_on_the_same_items_store_one_prediction_each(
    shadow_model, queue, digit_rows
):
    import threading

    from django.db import connections

    items = _items(queue, digit_rows[:60])
    ids = [item.pk for item in items]
    packed = features_pack([row.tolist() for row in digit_rows[:60]])
    received = [item.received_at.timestamp() for item in items]
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def worker(by_message: bool) -> None:
        try:
            start.wait()
            if by_message:
                scoring.predictions_score(
                    model_version_id=shadow_model.pk,
                    item_ids=ids,
                    features=packed,
                    received=received,
                )
            else:
                scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=ids)
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n % 2 == 0,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert Prediction.objects.count() == 60
    assert set(Prediction.objects.values_list("item_id", flat=True)) == set(ids)


def test_giving_up_a_batch_records_the_reason_on_items_still_without_a_prediction(
    shadow_model, queue, digit_rows
):
    from deployments.tasks import score_items_give_up

    scored, lost = _items(queue, digit_rows[:2])
    scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=[scored.pk])
    reason = "worker process died on each of 3 attempts to score this batch: signal 8 (SIGFPE)"
    score_items_give_up(shadow_model.pk, [scored.pk, lost.pk], reason, 3)
    assert Prediction.objects.get(item=scored).status == "ok"
    given_up = Prediction.objects.get(item=lost)
    assert (given_up.status, given_up.reason, given_up.attempts) == ("error", reason, 3)
    score_items_give_up(shadow_model.pk, [lost.pk], "again", 4)
    assert Prediction.objects.get(item=lost).reason == reason


def test_after_a_failed_send_new_items_skip_the_broker_for_a_while(
    shadow_model, queue, digit_rows, settings, django_capture_on_commit_callbacks
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "BROKER_PAUSE_SECONDS": 60}
    with (
        mock.patch(
            "deployments.tasks.score_items.delay", side_effect=ConnectionError("down")
        ) as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        for n in range(3):
            item_create(queue=queue, external_id=f"paused{n}", features=list(digit_rows[n]))
    assert delay.call_count == 1
    assert Item.objects.count() == 3


def test_without_a_pause_every_new_item_tries_the_broker(
    shadow_model, queue, digit_rows, settings, django_capture_on_commit_callbacks
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "BROKER_PAUSE_SECONDS": 0}
    with (
        mock.patch(
            "deployments.tasks.score_items.delay", side_effect=ConnectionError("down")
        ) as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        for n in range(3):
            item_create(queue=queue, external_id=f"tried{n}", features=list(digit_rows[n]))
    assert delay.call_count == 3
