"""Batch intake: one request, one transaction, one result per item in request order."""

from __future__ import annotations

import csv
import json
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection
from django.test import Client

from deployments.models import Decision
from inspections import intake
from inspections.models import Item
from inspections.services import BATCH_MAX_ITEMS, BatchRejected, item_create, items_intake_batch
from tests.deployments.rollout_factories import queue_quiet, rollout_live

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/queues/digits/items:batch"
GOOD = [float(n % 17) for n in range(64)]


@pytest.fixture(autouse=True)
def _patient_budget(settings):
    # Two shared cores can stall a scoring thread past the 50 ms budget; tests that are not
    # about the budget must not see such a timeout as a routing failure.
    settings.SHADOWLAB = {**settings.SHADOWLAB, "LIVE_BUDGET_MS": 10_000.0}


def _post(token: str, body: object) -> object:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(BATCH, data, content_type="application/json")


def test_a_mixed_batch_stores_the_good_items_and_answers_each_item_in_order(api_token, queue):
    existing = item_create(queue=queue, external_id="old", features=GOOD)
    items = [
        {"external_id": "a", "features": GOOD},
        {"external_id": "b", "features": GOOD[:10]},
        {"external_id": "old", "features": GOOD},
        {"external_id": " a ", "features": GOOD},
        "not an object",
        {"external_id": "c"},
        {"external_id": 7, "features": GOOD},
        {"external_id": "d", "features": [*GOOD[:63], "NaN"]},
        {"external_id": "e", "features": GOOD, "note": "extra fields are ignored"},
        {"external_id": "", "features": GOOD},
    ]

    response = _post(api_token, {"items": items})

    assert response.status_code == 200
    body = response.json()
    results = body["results"]
    assert [r["status"] for r in results] == [201, 400, 409, 409, 400, 400, 400, 400, 201, 400]
    assert (body["created"], body["duplicates"], body["refused"]) == (2, 2, 6)
    a, e = Item.objects.get(external_id="a"), Item.objects.get(external_id="e")
    assert results[0] == {
        "status": 201,
        "external_id": "a",
        "id": a.pk,
        "route": "human",
        "decision": None,
        "route_note": "",
        "detail": "",
    }
    assert results[8]["id"] == e.pk
    assert results[1]["detail"] == "features must have 64 values, got 10"
    assert results[2]["id"] == existing.pk and "already exists" in results[2]["detail"]
    assert results[3]["id"] == a.pk and "repeats item 0 of this batch" in results[3]["detail"]
    assert results[4]["detail"] == "an item must be an object with external_id and features"
    assert results[5]["detail"] == "features required"
    assert results[6]["detail"] == "external_id must be a string"
    assert results[6]["external_id"] is None
    assert results[7]["detail"] == "features[63] must be a number, got str 'NaN'"
    assert results[9]["detail"] == "external_id must be 1 to 200 characters"
    assert set(Item.objects.values_list("external_id", flat=True)) == {"old", "a", "e"}


def test_a_batch_a_live_model_decides_carries_each_decision_and_stores_them(
    api_token, queue, model_version, digit_rows, django_capture_on_commit_callbacks
):
    queue_quiet(queue)
    rollout_live(model_version)
    items = [
        {"external_id": f"m{n}", "features": row.tolist()} for n, row in enumerate(digit_rows[:200])
    ]

    with (
        mock.patch("deployments.tasks.score_items.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = _post(api_token, {"items": items})

    results = response.json()["results"]
    runner_labels = [
        model_version.labels[int(i)]
        for i in model_version_runner(model_version).predict(digit_rows[:200]).label_indices
    ]
    assert [r["route"] for r in results] == ["model"] * 200
    assert [r["decision"]["label"] for r in results] == runner_labels
    assert {r["decision"]["model"] for r in results} == {"digits-mlp:1"}
    stored = dict(Decision.objects.values_list("item_id", "label"))
    assert [stored[r["id"]] for r in results] == runner_labels
    # Shadow scoring keeps measuring the live version on every item, after commit.
    queued = [item_id for call in delay.call_args_list for item_id in call.args[1]]
    assert sorted(queued) == sorted(r["id"] for r in results)
    assert {call.args[0] for call in delay.call_args_list} == {model_version.pk}


def model_version_runner(model_version):
    from deployments.live import live_scorer

    return live_scorer(model_version).runner


def test_a_batch_with_deferred_and_failed_items_still_routes_every_item(
    api_token, queue, model_version, digit_rows
):
    queue_quiet(queue, deferral_threshold=0.95)
    rollout_live(model_version)
    items = [
        {"external_id": f"q{n}", "features": row.tolist()} for n, row in enumerate(digit_rows[:100])
    ]

    results = _post(api_token, {"items": items}).json()["results"]

    assert {r["status"] for r in results} == {201}
    routes = {r["route"] for r in results}
    assert routes == {"model", "human"}
    for result in results:
        if result["route"] == "human":
            assert result["decision"] is None and "threshold" in result["route_note"]
    assert Item.objects.filter(route__in=["model", "human"]).count() == 100
    assert set(Decision.objects.values_list("outcome", flat=True)) == {"decided", "deferred"}


def test_more_than_1000_items_are_refused_with_400_and_nothing_is_stored(api_token, queue):
    items = [{"external_id": f"x{n}", "features": GOOD} for n in range(BATCH_MAX_ITEMS + 1)]
    response = _post(api_token, {"items": items})
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "a batch holds at most 1,000 items, got 1,001: send the rest in further batches"
    )
    assert not Item.objects.exists()


def test_exactly_1000_items_are_taken(api_token, queue):
    items = [{"external_id": f"x{n}", "features": GOOD} for n in range(BATCH_MAX_ITEMS)]
    assert _post(api_token, {"items": items}).json()["created"] == BATCH_MAX_ITEMS
    assert Item.objects.count() == BATCH_MAX_ITEMS


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"items": []}, "a batch needs at least one item"),
        ({"items": "x"}, "items: Input should be a valid list"),
        ({}, "items: Field required"),
        ('{"items": [', "Cannot parse request body"),
    ],
)
def test_a_malformed_batch_is_refused_with_400_saying_why(api_token, queue, body, detail):
    response = _post(api_token, body)
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert not Item.objects.exists()


def test_a_batch_body_over_the_size_limit_is_refused_with_413(api_token, queue, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    items = [{"external_id": f"x{n}", "features": GOOD} for n in range(100)]
    response = _post(api_token, {"items": items})
    assert response.status_code == 413
    assert "larger than the limit of 10,000 bytes" in response.json()["detail"]
    assert not Item.objects.exists()


def _decisions_refused():
    """Make the database itself refuse every Decision row (a trigger), as a failing disk would."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TRIGGER refuse_decisions BEFORE INSERT ON deployments_decision "
                "BEGIN SELECT RAISE(ABORT, 'decisions refused'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION refuse_decisions() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'decisions refused'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER refuse_decisions BEFORE INSERT ON deployments_decision "
                "FOR EACH ROW EXECUTE FUNCTION refuse_decisions()"
            )


def test_a_database_error_stores_nothing_of_the_batch(api_token, queue, model_version, digit_rows):
    queue_quiet(queue)
    rollout_live(model_version)
    _decisions_refused()
    items = [
        {"external_id": f"z{n}", "features": row.tolist()} for n, row in enumerate(digit_rows[:50])
    ]

    with pytest.raises(DatabaseError, match="decisions refused"):
        items_intake_batch(queue=queue, items=items)
    assert not Item.objects.exists()

    response = _post(api_token, {"items": items})
    assert response.status_code == 503
    assert "nothing was stored" in response.json()["detail"]
    assert not Item.objects.exists()
    assert not Decision.objects.exists()


def test_the_service_refuses_an_empty_or_oversized_batch(queue):
    with pytest.raises(BatchRejected):
        items_intake_batch(queue=queue, items=[])
    with pytest.raises(BatchRejected):
        items_intake_batch(queue=queue, items=[{}] * (BATCH_MAX_ITEMS + 1))


def test_import_items_goes_through_batch_intake_in_chunks_of_at_most_1000(
    tmp_path: Path, queue, model_version, digit_rows
):
    queue_quiet(queue)
    rollout_live(model_version)
    path = tmp_path / "items.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["external_id", *[f"p{n}" for n in range(64)]])
        for n in range(2500):
            writer.writerow([f"csv-{n}", *digit_rows[n % len(digit_rows)].tolist()])

    with mock.patch.object(intake, "items_intake_batch", wraps=intake.items_intake_batch) as batch:
        call_command(
            "import_items", str(path), queue="digits", stdout=StringIO(), stderr=StringIO()
        )

    assert [len(call.kwargs["items"]) for call in batch.call_args_list] == [1000, 1000, 500]
    assert Item.objects.filter(route="model").count() == 2500
    assert Decision.objects.count() == 2500


@pytest.mark.security
def test_unstorable_items_are_refused_one_by_one_and_the_rest_of_the_batch_is_stored(
    api_token, queue
):
    body = (
        '{"items": ['
        '{"external_id": "good-1", "features": ' + json.dumps(GOOD) + "},"
        '{"external_id": "bad-\\ud800", "features": ' + json.dumps(GOOD) + "},"
        '{"external_id": "bad-\\u0000", "features": ' + json.dumps(GOOD) + "},"
        '{"external_id": "huge", "features": [' + "1" * 400 + ", " + json.dumps(GOOD[1:])[1:] + "},"
        '{"external_id": "good-2", "features": ' + json.dumps(GOOD) + "}"
        "]}"
    )

    response = _post(api_token, body)

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 400, 400, 400, 201]
    assert "lone surrogate" in results[1]["detail"]
    assert "NUL" in results[2]["detail"]
    assert results[3]["detail"].startswith("features[0] must be finite, got an integer of")
    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["good-1", "good-2"]
