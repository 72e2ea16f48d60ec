"""The request-promotion form of the gate page, on top of the promotion workflow's service."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.gate.evaluation import gate_evaluation_run
from analytics.models import GateEvaluation
from deployments.models import PromotionRequest
from deployments.services import deployment_shadow_start
from tests.analytics.gate_data import gate_data_build
from tests.analytics.gate_evidence_fakes import PASSING, evidence_patch

pytestmark = pytest.mark.django_db

PAGE = "/rollout/parts-gate/gate/m:1/"


@pytest.fixture
def passing(monkeypatch, ml_lead):
    data = gate_data_build()
    deployment_shadow_start(model_version=data.fp32, actor=None)
    evidence_patch(monkeypatch, **PASSING)
    return data, gate_evaluation_run(model_version=data.fp32, actor=ml_lead)


def test_a_lead_requests_a_canary_on_a_passing_evaluation(passing, client_for, ml_lead):
    _, evaluation = passing
    client = client_for(ml_lead)

    response = client.post(
        f"{PAGE}request",
        {"evaluation": evaluation.pk, "target": "canary", "share": "0.05", "note": "ready"},
    )

    assert response.status_code == 302
    assert response["Location"] == PAGE
    request = PromotionRequest.objects.get()
    assert (request.status, request.target, request.share) == ("pending", "canary", 0.05)
    assert (request.evaluation, request.requested_by, request.note) == (
        evaluation,
        ml_lead,
        "ready",
    )
    html = client.get(PAGE).content.decode()
    assert f"Promotion request #{request.pk}" in html and "is pending" in html
    assert 'name="target"' not in html


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"target": "canary", "share": "0"}, "The share must be above 0."),
        ({"target": "canary", "share": "1.5"}, "less than or equal to 1"),
        ({"target": "canary", "share": "nan"}, "Enter a number."),
        ({"target": "everywhere", "share": "0.1"}, "Select a valid choice."),
    ],
)
def test_a_bad_request_form_is_a_400_with_the_reason_and_nothing_requested(
    passing, client_for, ml_lead, form, message
):
    _, evaluation = passing
    response = client_for(ml_lead).post(f"{PAGE}request", {"evaluation": evaluation.pk, **form})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not PromotionRequest.objects.exists()


def test_a_request_on_another_versions_evaluation_is_refused(passing, client_for, ml_lead):
    data, _ = passing
    other = gate_evaluation_run(model_version=data.int8, actor=ml_lead)
    response = client_for(ml_lead).post(
        f"{PAGE}request", {"evaluation": other.pk, "target": "canary", "share": "0.05"}
    )
    assert response.status_code == 400
    assert f"m:1 has no gate evaluation {other.pk}" in response.content.decode()
    assert not PromotionRequest.objects.exists()


def test_a_request_the_workflow_refuses_is_a_409_with_its_reason(passing, client_for, ml_lead):
    _, evaluation = passing
    # Stale: the workflow refuses an evaluation older than the policy allows.
    GateEvaluation.objects.filter(pk=evaluation.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )

    response = client_for(ml_lead).post(
        f"{PAGE}request", {"evaluation": evaluation.pk, "target": "canary", "share": "0.05"}
    )

    assert response.status_code == 409
    assert "Not requested: " in response.content.decode()
    assert not PromotionRequest.objects.exists()


def test_the_form_proposes_the_next_step_of_the_canary_ladder(passing, client_for, ml_lead):
    data, _ = passing
    client = client_for(ml_lead)
    html = client.get(PAGE).content.decode()
    assert "Next step on the canary ladder (5% → 25% → 50% → 100%): canary at 5% of items" in html
    assert 'value="0.05"' in html

    from deployments.models import Deployment

    Deployment.objects.filter(model_version=data.fp32).update(role="canary", traffic_share=0.5)
    html = client.get(PAGE).content.decode()
    assert "live, through the blue-green switch and its health check" in html
    assert '<option value="live" selected>' in html
