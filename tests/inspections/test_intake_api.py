"""The intake API: submitting items, reading decisions, tokens per queue, precise refusals."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from django.test import Client
from django.test.client import FakePayload

from deployments.scoring import predictions_score
from inspections.models import Item
from inspections.services import api_token_create, item_create, judgment_record

pytestmark = pytest.mark.django_db

SUBMIT = "/api/v1/queues/digits/items"
GOOD_FEATURES = [float(n % 17) for n in range(64)]


def _client(token: str | None) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}") if token else Client()


def _submit(token, payload, *, queue_slug="digits"):
    body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
    return _client(token).post(
        f"/api/v1/queues/{queue_slug}/items", body, content_type="application/json"
    )


@pytest.fixture
def other_token(other_queue) -> str:
    return api_token_create(queue=other_queue, name="parts client")[1]


# Submitting


def test_a_valid_item_is_stored_routed_to_humans_and_answered_with_201(api_token, queue):
    response = _submit(api_token, {"external_id": "scan-1", "features": GOOD_FEATURES})

    assert response.status_code == 201
    item = Item.objects.get()
    assert response.json() == {"id": item.pk, "route": "human", "decision": None, "route_note": ""}
    assert (item.queue, item.external_id, item.features) == (queue, "scan-1", GOOD_FEATURES)
    assert item.human_status == Item.HumanStatus.PENDING


def test_integer_features_are_accepted_and_stored_as_numbers(api_token):
    response = _submit(api_token, {"external_id": "ints", "features": list(range(64))})
    assert response.status_code == 201
    assert Item.objects.get().features == [float(n) for n in range(64)]


def _raw(external_id: str, features_json: str) -> str:
    return f'{{"external_id": "{external_id}", "features": {features_json}}}'


def _with_first(value: str) -> str:
    return "[" + ", ".join([value] + ["1"] * 63) + "]"


BAD_INPUTS = [
    pytest.param(
        _raw("x", json.dumps([1.0] * 63)), "features must have 64 values, got 63", id="too-short"
    ),
    pytest.param(
        _raw("x", json.dumps([1.0] * 65)), "features must have 64 values, got 65", id="too-long"
    ),
    pytest.param(_raw("x", "[]"), "features must have 64 values, got 0", id="empty-features"),
    pytest.param(_raw("x", _with_first("NaN")), "features[0] must be finite, got nan", id="nan"),
    pytest.param(
        _raw("x", _with_first("Infinity")), "features[0] must be finite, got inf", id="infinity"
    ),
    pytest.param(
        _raw("x", _with_first("-Infinity")), "features[0] must be finite, got -inf", id="-infinity"
    ),
    pytest.param(
        _raw("x", "[1" + ", 1" * 30 + ', "7"' + ", 1" * 32 + "]"),
        "features[31] must be a number, got str '7'",
        id="string-in-features",
    ),
    pytest.param(
        _raw("x", _with_first("true")), "features[0] must be a number, got bool", id="boolean"
    ),
    pytest.param(
        _raw("x", _with_first("null")), "features[0] must be a number, got NoneType", id="null"
    ),
    pytest.param(_raw("x", "5"), "features: Input should be a valid list", id="features-number"),
    pytest.param(
        _raw("x", '"1,2,3"'), "features: Input should be a valid list", id="features-string"
    ),
    pytest.param(
        json.dumps({"features": GOOD_FEATURES}), "external_id: Field required", id="no-external-id"
    ),
    pytest.param(json.dumps({"external_id": "x"}), "features: Field required", id="no-features"),
    pytest.param(
        _raw("", json.dumps(GOOD_FEATURES)), "external_id must be 1 to 200", id="empty-id"
    ),
    pytest.param(
        _raw("   ", json.dumps(GOOD_FEATURES)), "external_id must be 1 to 200", id="blank-id"
    ),
    pytest.param(
        _raw("x" * 201, json.dumps(GOOD_FEATURES)), "external_id must be 1 to 200", id="long-id"
    ),
    pytest.param(
        json.dumps({"external_id": 5, "features": GOOD_FEATURES}),
        "external_id: Input should be a valid string",
        id="numeric-id",
    ),
    pytest.param(
        '{"external_id": "x", "features": [1, 2', "Cannot parse request body", id="bad-json"
    ),
    # An empty body is an absent payload: pydantic names no field, only that one is required.
    pytest.param("", "Field required", id="empty-body"),
]


@pytest.mark.parametrize(("body", "detail"), BAD_INPUTS)
def test_a_bad_item_is_refused_with_400_saying_why_and_nothing_is_stored(api_token, body, detail):
    response = _submit(api_token, body)

    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert not Item.objects.exists()


def test_a_50_mb_body_is_refused_with_413_before_it_is_read(api_token):
    body = b'{"external_id":"x","features":[' + b"1," * (25 * 1024 * 1024) + b"1]}"
    read_sizes: list[int] = []
    real_read = FakePayload.read

    def spy(payload, size=-1):
        chunk = real_read(payload, size)
        read_sizes.append(len(chunk))
        return chunk

    with mock.patch.object(FakePayload, "read", spy):
        response = _submit(api_token, body)

    assert response.status_code == 413
    assert "larger than the limit" in response.json()["detail"]
    assert sum(read_sizes) == 0
    assert not Item.objects.exists()


def test_a_repeated_external_id_is_refused_with_409_naming_the_existing_item(api_token):
    first = _submit(api_token, {"external_id": "scan-1", "features": GOOD_FEATURES})
    again = _submit(api_token, {"external_id": " scan-1 ", "features": [0.0] * 64})

    assert again.status_code == 409
    assert again.json()["id"] == first.json()["id"]
    assert "scan-1" in again.json()["detail"]
    assert Item.objects.get().features == GOOD_FEATURES


def test_the_same_external_id_may_be_used_in_two_queues(api_token, other_token, queue):
    item_create(queue=queue, external_id="shared", features=GOOD_FEATURES)
    response = _submit(
        other_token, {"external_id": "shared", "features": [1, 2, 3]}, queue_slug="parts"
    )
    assert response.status_code == 201
    assert Item.objects.filter(external_id="shared").count() == 2


# Tokens


def test_submitting_without_a_token_is_401(queue):
    response = _submit(None, {"external_id": "x", "features": GOOD_FEATURES})
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert not Item.objects.exists()


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer slk_not-a-token",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "slk_no-scheme",
        "Bearer " + "a" * 500,
    ],
)
def test_submitting_with_a_wrong_token_is_401(queue, api_token, authorization):
    response = Client(HTTP_AUTHORIZATION=authorization).post(
        SUBMIT, {"external_id": "x", "features": GOOD_FEATURES}, content_type="application/json"
    )
    assert response.status_code == 401
    assert not Item.objects.exists()


def test_a_token_of_another_queue_is_403(queue, other_token):
    response = _submit(other_token, {"external_id": "x", "features": GOOD_FEATURES})
    assert response.status_code == 403
    assert not Item.objects.exists()


def test_an_unknown_queue_is_404(api_token):
    response = _submit(api_token, {"external_id": "x", "features": [1]}, queue_slug="nope")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_a_used_token_records_when(api_token, queue):
    token = queue.api_tokens.get()
    assert token.last_used_at is None
    _submit(api_token, {"external_id": "x", "features": GOOD_FEATURES})
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_a_token_used_again_within_a_minute_is_not_written_again(api_token, queue):
    from datetime import timedelta

    from django.utils import timezone

    token = queue.api_tokens.get()
    _submit(api_token, {"external_id": "x1", "features": GOOD_FEATURES})
    token.refresh_from_db()
    first = token.last_used_at
    _submit(api_token, {"external_id": "x2", "features": GOOD_FEATURES})
    token.refresh_from_db()
    assert token.last_used_at == first
    earlier = timezone.now() - timedelta(minutes=2)
    queue.api_tokens.update(last_used_at=earlier)
    _submit(api_token, {"external_id": "x3", "features": GOOD_FEATURES})
    token.refresh_from_db()
    assert token.last_used_at > earlier + timedelta(minutes=1)


# Reading an item


def test_reading_an_item_gives_its_status_decision_and_judgments_but_no_prediction(
    api_token, queue, shadow_model, inspector
):
    item = item_create(queue=queue, external_id="scan-9", features=GOOD_FEATURES)
    predictions_score(model_version_id=shadow_model.pk, item_ids=[item.pk])
    assert item.predictions.count() == 1
    client = _client(api_token)

    pending = client.get(f"/api/v1/items/{item.pk}")
    assert pending.status_code == 200
    assert pending.json()["status"] == "pending"
    assert pending.json()["decision"] is None
    assert pending.json()["judgments"] == []

    judgment_record(item=item, inspector=inspector, label="7", seconds_spent=2.0)
    read = client.get(f"/api/v1/items/{item.pk}").json()

    assert set(read) == {
        "id",
        "queue",
        "external_id",
        "received_at",
        "route",
        "status",
        "judgments_needed",
        "decision",
        "decided_by",
        "route_note",
        "judgments",
    }
    assert (read["id"], read["queue"], read["external_id"]) == (item.pk, "digits", "scan-9")
    assert (read["status"], read["decision"], read["route"]) == ("complete", "7", "human")
    assert read["decided_by"] == "inspectors"
    assert pending.json()["decided_by"] is None
    assert [j["label"] for j in read["judgments"]] == ["7"]
    assert set(read["judgments"][0]) == {"label", "created_at"}
    text = json.dumps(read).lower()
    prediction = item.predictions.get()
    for leak in ("prediction", "confidence", "probabilit", "model", f"{prediction.confidence}"):
        assert leak not in text


def test_reading_an_audited_item_gives_the_models_decision_and_the_audit_judgment(
    api_token, queue, model_version, inspector, digit_rows, settings
):
    from tests.deployments.rollout_factories import queue_quiet, rollout_live

    settings.SHADOWLAB = {**settings.SHADOWLAB, "LIVE_BUDGET_MS": 10_000.0}
    queue_quiet(queue, audit_rate=1.0)
    rollout_live(model_version)
    item = item_create(queue=queue, external_id="audited", features=digit_rows[0].tolist())
    model_label = item.decision.label
    other = next(label for label in queue.labels if label != model_label)
    client = _client(api_token)

    before = client.get(f"/api/v1/items/{item.pk}").json()
    judgment_record(item=item, inspector=inspector, label=other, seconds_spent=2.0)
    after = client.get(f"/api/v1/items/{item.pk}").json()

    for read in (before, after):
        assert (read["route"], read["status"], read["decision"]) == (
            "model",
            "complete",
            model_label,
        )
        assert read["decided_by"] == "digits-mlp:1"
    assert before["judgments"] == []
    assert [j["label"] for j in after["judgments"]] == [other]


def test_reading_an_item_of_another_queue_is_403(queue, other_token):
    item = item_create(queue=queue, external_id="x", features=GOOD_FEATURES)
    response = _client(other_token).get(f"/api/v1/items/{item.pk}")
    assert response.status_code == 403
    assert "external_id" not in response.json()


def test_reading_an_unknown_item_is_404(api_token):
    assert _client(api_token).get("/api/v1/items/987654").status_code == 404


@pytest.mark.parametrize("token", [None, "slk_wrong"])
def test_reading_an_item_without_a_valid_token_is_401(queue, token):
    item = item_create(queue=queue, external_id="x", features=GOOD_FEATURES)
    assert _client(token).get(f"/api/v1/items/{item.pk}").status_code == 401


# Tokens against operations, in one table


@pytest.mark.parametrize(
    ("token_of", "operation", "expected"),
    [
        ("digits", "submit", 201),
        ("parts", "submit", 403),
        (None, "submit", 401),
        ("digits", "read", 200),
        ("parts", "read", 403),
        (None, "read", 401),
    ],
)
def test_a_token_works_only_for_its_own_queue(queue, other_queue, token_of, operation, expected):
    token = None
    if token_of:
        which = queue if token_of == "digits" else other_queue
        token = api_token_create(queue=which)[1]
    if operation == "submit":
        response = _submit(token, {"external_id": "new", "features": GOOD_FEATURES})
    else:
        item = item_create(queue=queue, external_id="old", features=GOOD_FEATURES)
        response = _client(token).get(f"/api/v1/items/{item.pk}")
    assert response.status_code == expected


# The schema


def test_the_openapi_schema_lists_both_operations(client_for, ml_lead):
    response = client_for(ml_lead).get("/api/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "post" in paths["/api/v1/queues/{slug}/items"]
    assert "get" in paths["/api/v1/items/{item_id}"]
    assert "post" in paths["/api/v1/queues/{slug}/items:batch"]


# Values no database can store, or no float can hold: refused with 400 saying which.
UNSTORABLE = [
    pytest.param(
        '{"external_id": "x", "features": ' + _with_first("1" * 400) + "}",
        "features[0] must be finite, got an integer of about 400 digits",
        id="400-digit-int",
    ),
    pytest.param(
        '{"external_id": "x", "features": ' + _with_first("-" + "9" * 310) + "}",
        "features[0] must be finite",
        id="negative-huge-int",
    ),
    pytest.param(
        '{"external_id": "x", "features": ' + _with_first("1" * 5000) + "}",
        "Cannot parse request body",
        id="int-past-python-digit-limit",
    ),
    pytest.param(
        '{"external_id": "a\\ud800b", "features": ' + _with_first("1") + "}",
        "character 1 is a lone surrogate (\\ud800)",
        id="lone-surrogate",
    ),
    pytest.param(
        '{"external_id": "\\udfff", "features": ' + _with_first("1") + "}",
        "lone surrogate",
        id="low-surrogate",
    ),
    pytest.param(
        '{"external_id": "a\\u0000b", "features": ' + _with_first("1") + "}",
        "external_id must not hold a NUL character",
        id="nul",
    ),
]


@pytest.mark.security
@pytest.mark.parametrize(("body", "detail"), UNSTORABLE)
def test_a_value_no_column_or_float_can_hold_is_a_400_naming_it(api_token, body, detail):
    response = _submit(api_token, body)

    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert not Item.objects.exists()


@pytest.mark.security
def test_a_paired_surrogate_escape_is_ordinary_text(api_token):
    # "\ud83d\ude00" is one character (an emoji) written as a UTF-16 pair: valid, stored.
    response = _submit(
        api_token, '{"external_id": "scan-\\ud83d\\ude00", "features": [1' + ", 1" * 63 + "]}"
    )
    assert response.status_code == 201
    assert Item.objects.get().external_id == "scan-\N{GRINNING FACE}"
