"""Shadow scoring through the real broker and a real worker process (not eager mode)."""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from deployments.models import Prediction, ScoringAttempt
from deployments.registry import model_version_quantize
from deployments.services import deployment_shadow_start
from deployments.tasks import sweep_unscored
from inspections.models import Item

from .conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ITEMS = 500


@pytest.fixture
def two_shadow_models(shadow_model, admin_user):
    int8 = model_version_quantize(model_version=shadow_model, created_by=admin_user)
    deployment_shadow_start(model_version=int8, actor=admin_user)
    return [shadow_model, int8]


def _post_items(client, token, rows, prefix):
    for index in range(ITEMS):
        response = client.post(
            "/api/v1/queues/digits/items",
            {"external_id": f"{prefix}-{index}", "features": rows[index % len(rows)].tolist()},
            content_type="application/json",
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 201, response.content


def _predictions() -> int:
    return Prediction.objects.count()


def _assert_exactly_one_ok_prediction_per_item_and_version(versions) -> None:
    per_pair = (
        Prediction.objects.values("item", "model_version").annotate(n=Count("id")).filter(n__gt=1)
    )
    assert not per_pair.exists()
    errors = list(
        Prediction.objects.filter(status="error").values_list("reason", flat=True).distinct()[:5]
    )
    assert errors == [], "errors recorded instead of predictions"
    for version in versions:
        scored = Prediction.objects.filter(model_version=version, status="ok")
        assert scored.count() == Item.objects.count() == ITEMS


def test_every_item_posted_through_the_api_gets_one_prediction_per_shadow_model(
    worker, two_shadow_models, api_token, client, digit_rows
):
    worker.start()
    _post_items(client, api_token, digit_rows, "api")
    wait_until(
        lambda: _predictions() >= 2 * ITEMS,
        timeout=180,
        message=f"{_predictions()} of {2 * ITEMS} predictions\n{worker.log()[-3000:]}",
    )
    _assert_exactly_one_ok_prediction_per_item_and_version(two_shadow_models)
    fp32, int8 = two_shadow_models
    assert set(Prediction.objects.filter(model_version=int8).values_list("backend", flat=True)) == {
        "int8"
    }
    assert set(Prediction.objects.filter(model_version=fp32).values_list("backend", flat=True)) == {
        "fp32"
    }


def test_sweeper_recovers_every_item_after_the_worker_is_killed_mid_run(
    worker, two_shadow_models, api_token, client, digit_rows
):
    # Items arrive while no worker runs; the worker starts on the backlog and is killed.
    _post_items(client, api_token, digit_rows, "kill")
    worker.start()
    wait_until(lambda: _predictions() > 20, timeout=120, message="worker scored nothing")
    worker.kill()
    killed_at = _predictions()
    assert killed_at < 2 * ITEMS, "the worker finished before it could be killed"

    worker.start()
    # Whatever the killed worker had taken from the broker is gone (the file broker deletes
    # a message when it is fetched; Redis keeps it unacknowledged for an hour): the sweeper
    # queues those items again once they are older than its grace period.
    last_sweep = 0.0

    def swept_all() -> bool:
        nonlocal last_sweep
        if _predictions() >= 2 * ITEMS:
            return True
        # Not more often: each sweep counts an attempt for every item still waiting, and the
        # restarted worker must be given time to drain the backlog before the 5th.
        if time.monotonic() - last_sweep > 10:
            sweep_unscored.delay()
            last_sweep = time.monotonic()
        return False

    wait_until(
        swept_all,
        timeout=240,
        message=f"{_predictions()} of {2 * ITEMS} predictions\n{worker.log()[-3000:]}",
    )
    _assert_exactly_one_ok_prediction_per_item_and_version(two_shadow_models)
    assert ScoringAttempt.objects.exists(), "nothing was lost, so the sweeper was not tested"
