"""/metrics in Prometheus format: scoring counters, histograms and the backlog."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from deployments import scoring
from inspections.models import Item
from inspections.services import item_create

pytestmark = pytest.mark.django_db

TOKEN = "scraper-token-for-tests"
BEARER = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.SHADOWLAB_METRICS_TOKEN = TOKEN


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_count_scored_items_errors_batches_and_lag(client, shadow_model, queue, digit_rows):
    key = shadow_model.key
    before_ok = _sample("shadowlab_predictions_total", model=key, status="ok")
    before_err = _sample("shadowlab_scoring_errors_total", model=key, reason="invalid_features")
    before_batches = _sample("shadowlab_scoring_batch_items_count")
    before_lag = _sample("shadowlab_scoring_lag_seconds_count", model=key)
    items = [
        item_create(queue=queue, external_id=f"m{n}", features=digit_rows[n].tolist())
        for n in range(6)
    ]
    Item.objects.filter(pk=items[0].pk).update(features=[1.0])
    scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=[i.pk for i in items])

    assert _sample("shadowlab_predictions_total", model=key, status="ok") == before_ok + 5
    assert (
        _sample("shadowlab_scoring_errors_total", model=key, reason="invalid_features")
        == before_err + 1
    )
    assert _sample("shadowlab_scoring_batch_items_count") == before_batches + 1
    assert _sample("shadowlab_scoring_lag_seconds_count", model=key) == before_lag + 6

    body = client.get("/metrics", **BEARER).content.decode()
    assert f'shadowlab_predictions_total{{model="{key}",status="ok"}}' in body
    assert "shadowlab_inference_seconds_bucket" in body
    assert "django_http_requests_total_by_method_total" in body


def test_metrics_report_items_still_waiting_for_a_prediction(
    client, shadow_model, queue, digit_rows
):
    for n in range(3):
        item_create(queue=queue, external_id=f"w{n}", features=digit_rows[n].tolist())
    body = client.get("/metrics", **BEARER).content.decode()
    assert f'shadowlab_pending_items{{model="{shadow_model.key}",queue="digits"}} 3.0' in body
    assert 'shadowlab_items_awaiting_judgment{queue="digits"} 3.0' in body


@pytest.mark.security
def test_metrics_do_not_exist_while_no_token_is_configured(client, settings, admin_user):
    settings.SHADOWLAB_METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", **BEARER).status_code == 404
    client.force_login(admin_user)
    assert client.get("/metrics").status_code == 404


@pytest.mark.security
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong-token", f"Basic {TOKEN}", f"Bearer {TOKEN}x"],
)
def test_metrics_refuse_a_request_without_the_right_bearer_token(client, authorization):
    headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get("/metrics", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"shadowlab_" not in response.content


@pytest.mark.security
def test_metrics_answer_the_scraper_that_sends_the_token(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"bearer {TOKEN}")
    assert response.status_code == 200
    assert "django_http_requests_total_by_method_total" in response.content.decode()


def test_metrics_report_the_messages_waiting_in_the_broker_per_celery_queue(
    client, shadow_model, queue, digit_rows, django_capture_on_commit_callbacks
):
    def waiting(queue_name: str) -> float:
        body = client.get("/metrics", **BEARER).content.decode()
        line = f'shadowlab_broker_queue_messages{{queue="{queue_name}"}} '
        values = [row[len(line) :] for row in body.splitlines() if row.startswith(line)]
        assert values, f"no {line.strip()} in /metrics"
        return float(values[0])

    before = waiting("inference")
    assert waiting("default") >= 0
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            item_create(queue=queue, external_id=f"b{n}", features=digit_rows[n].tolist())
    # No worker runs here: each commit's message stays in the `inference` queue.
    assert waiting("inference") == before + 3
