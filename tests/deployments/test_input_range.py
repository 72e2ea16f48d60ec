"""No model decides an input far outside its reference data, on either backend or path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from deployments import live
from deployments.input_range import FLOAT32_MAX, InputRange
from deployments.models import Decision, Prediction
from deployments.registry import model_version_quantize
from deployments.scoring import predictions_score
from deployments.services import deployment_shadow_start
from inspections.models import Item
from inspections.services import item_create
from tests.deployments.rollout_factories import queue_quiet, rollout_live

REFERENCE = np.array([[0.0, 10.0, 5.0], [2.0, 20.0, 5.0], [4.0, 30.0, 5.0]])


def test_band_is_the_reference_range_widened_by_the_margin_times_each_span():
    band = InputRange.around_reference(REFERENCE, margin=1.0)
    # Spans 4, 20 and 0: none is widened by less than their median, 12.
    assert band.lower.tolist() == [-12.0, -10.0, -7.0]
    assert band.upper.tolist() == [16.0, 50.0, 17.0]
    assert InputRange.around_reference(REFERENCE, margin=0.0).upper.tolist() == [4.0, 30.0, 5.0]


def test_rows_inside_the_band_pass_and_others_name_their_first_offending_feature():
    band = InputRange.around_reference(REFERENCE, margin=1.0)
    rows = np.array(
        [
            [16.0, -10.0, 17.0],  # on the edges
            [16.01, 20.0, 5.0],
            [1.0, 1e308, float("nan")],
            [float("-inf"), 20.0, 5.0],
            [1.0, 20.0, float("nan")],
        ]
    )
    assert band.problems(rows) == [
        None,
        "input outside the model's reference range (feature 0 = 16.01)",
        "input outside the model's reference range (feature 1 = 1e+308)",
        "input outside the model's reference range (feature 0 = -inf)",
        "input outside the model's reference range (feature 2 = nan)",
    ]


def test_without_reference_data_only_what_float32_cannot_hold_is_refused():
    assert InputRange.around_reference(None, margin=1.0) is None
    band = InputRange.unbounded(2)
    assert band.problems(np.array([[FLOAT32_MAX, -1e30], [1e39, 0.0]])) == [
        None,
        "input outside the float32 range the model takes (feature 0 = 1e+39)",
    ]


def _features(digit_rows, n: int, *, feature: int | None = None, value: float = 0.0):
    row = digit_rows[n].tolist()
    if feature is not None:
        row[feature] = value
    return row


@pytest.mark.django_db
def test_fp32_and_int8_both_refuse_an_absurd_input_and_score_the_others(
    model_version, admin_user, queue, digit_rows, settings
):
    int8 = model_version_quantize(model_version=model_version, created_by=admin_user)
    items = [
        item_create(queue=queue, external_id="plain", features=_features(digit_rows, 0)),
        item_create(
            queue=queue,
            external_id="1e308",
            features=_features(digit_rows, 1, feature=5, value=1e308),
        ),
        item_create(
            queue=queue, external_id="far", features=_features(digit_rows, 2, feature=9, value=1e6)
        ),
        # 30 is outside the reference pixel range 0-16 but within one span of it: scored.
        item_create(
            queue=queue, external_id="near", features=_features(digit_rows, 3, feature=9, value=30)
        ),
    ]
    ids = [item.pk for item in items]
    for version in (model_version, int8):
        predictions_score(model_version_id=version.pk, item_ids=ids)
        stored = {
            p.item.external_id: p
            for p in Prediction.objects.filter(model_version=version).select_related("item")
        }
        assert stored["plain"].status == stored["near"].status == Prediction.Status.OK
        for name, feature, value in (("1e308", 5, "1e+308"), ("far", 9, "1e+06")):
            assert stored[name].status == Prediction.Status.ERROR, (version.variant, name)
            assert stored[name].label == ""
            assert stored[name].reason == (
                f"input outside the model's reference range (feature {feature} = {value})"
            )

    # A stricter margin refuses the nearer value too (the setting is read when scoring).
    settings.SHADOWLAB = {**settings.SHADOWLAB, "INPUT_RANGE_MARGIN": 0.0}
    near = item_create(
        queue=queue, external_id="near-2", features=_features(digit_rows, 4, feature=9, value=30)
    )
    predictions_score(model_version_id=model_version.pk, item_ids=[near.pk])
    assert Prediction.objects.get(item=near, model_version=model_version).reason.startswith(
        "input outside the model's reference range (feature 9 = 30)"
    )


@pytest.mark.django_db
def test_live_scorer_falls_back_to_humans_without_calling_the_model(model_version, digit_rows):
    scorer = live.live_scorer(model_version)
    rows = np.array([digit_rows[0], digit_rows[1]], dtype=np.float64)
    rows[1, 3] = 1e308
    plain, absurd = scorer.score_batch(rows)
    assert not plain.is_fallback
    assert absurd.is_fallback
    assert (
        absurd.fallback_reason == "input outside the model's reference range (feature 3 = 1e+308)"
    )
    as_list = scorer.score([*digit_rows[2].tolist()[:63], -5e7])
    assert as_list.fallback_reason == (
        "input outside the model's reference range (feature 63 = -5e+07)"
    )
    assert scorer.breaker.state == "closed"


def _intake(client, token: str, external_id: str, features: list[float]):
    return client.post(
        "/api/v1/queues/digits/items",
        data=json.dumps({"external_id": external_id, "features": features}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("backend", ["fp32", "int8"])
def test_a_live_model_never_decides_an_absurd_item_inspectors_do(
    backend, client, model_version, admin_user, queue, api_token, digit_rows
):
    version = model_version
    if backend == "int8":
        version = model_version_quantize(model_version=model_version, created_by=admin_user)
    queue_quiet(queue)
    rollout_live(version)

    plain = _intake(client, api_token, "plain", _features(digit_rows, 0))
    assert plain.status_code == 201 and plain.json()["route"] == "model"
    absurd = _intake(client, api_token, "absurd", _features(digit_rows, 1, feature=7, value=1e308))
    assert absurd.status_code == 201
    body = absurd.json()
    assert body["route"] == "human" and body["decision"] is None
    reason = "input outside the model's reference range (feature 7 = 1e+308)"
    assert reason in body["route_note"]
    decision = Decision.objects.get(item_id=body["id"])
    assert decision.outcome == "failed" and decision.reason == reason

    batch = client.post(
        "/api/v1/queues/digits/items:batch",
        data=json.dumps(
            {
                "items": [
                    {"external_id": "b-plain", "features": _features(digit_rows, 2)},
                    {
                        "external_id": "b-far",
                        "features": _features(digit_rows, 3, feature=0, value=-1e9),
                    },
                ]
            }
        ),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_token}",
    )
    assert batch.status_code == 200
    plain_result, far_result = batch.json()["results"]
    assert plain_result["route"] == "model"
    assert far_result["route"] == "human"
    assert "(feature 0 = -1e+09)" in far_result["route_note"]
    assert Item.objects.get(external_id="b-far").route == "human"


@pytest.mark.django_db
def test_shadow_versions_of_a_live_queue_record_the_refusal_too(
    model_version, second_version, admin_user, queue, digit_rows
):
    deployment_shadow_start(model_version=second_version, actor=admin_user)
    item = item_create(
        queue=queue, external_id="x", features=_features(digit_rows, 0, feature=1, value=-1e20)
    )
    predictions_score(model_version_id=second_version.pk, item_ids=[item.pk])
    prediction = Prediction.objects.get(item=item, model_version=second_version)
    assert prediction.status == Prediction.Status.ERROR
    assert prediction.reason == "input outside the model's reference range (feature 1 = -1e+20)"
