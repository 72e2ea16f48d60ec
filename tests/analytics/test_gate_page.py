"""The gate page of a model version: verdict and lights, methods, needs, evaluating, requesting."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.gate.evaluation import gate_evaluation_run
from analytics.gate.policy import gate_policy_update
from analytics.models import GateEvaluation
from deployments.models import AuditEvent, PromotionRequest
from tests.analytics.gate_data import gate_data_build
from tests.analytics.gate_evidence_fakes import FAILING, PASSING, THIN, evidence_patch

pytestmark = pytest.mark.django_db

PAGE = "/rollout/parts-gate/gate/m:1/"


@pytest.fixture
def data():
    return gate_data_build()


def _evaluated(monkeypatch, data, actor, evidence):
    evidence_patch(monkeypatch, **evidence)
    return gate_evaluation_run(model_version=data.fp32, actor=actor)


def _row(html: str, criterion: str) -> str:
    match = re.search(
        rf'<tr class="criterion [^"]*" data-criterion="{criterion}">(.*?)</tr>', html, re.S
    )
    assert match, criterion
    return match.group(0)


def test_a_version_never_evaluated_reads_as_a_sentence_with_the_evaluate_button(
    data, client_for, ml_lead
):
    response = client_for(ml_lead).get(PAGE)

    assert response.status_code == 200
    html = response.content.decode()
    assert "m:1 has not been evaluated yet." in html
    assert 'action="/rollout/parts-gate/gate/m:1/evaluate"' in html
    assert "No promotion can be requested before the gate has been evaluated." in html
    assert 'name="target"' not in html
    assert 'data-criterion="' not in html


def test_a_passing_evaluation_shows_green_lights_the_methods_and_the_request_form(
    monkeypatch, data, client_for, ml_lead
):
    evaluation = _evaluated(monkeypatch, data, ml_lead, PASSING)
    assert evaluation.verdict == "pass"

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert "Passes the gate" in html
    assert 'class="light big good"' in html
    for name in ("sample_size", "noninferiority", "agreement_floor", "kappa_floor", "error_rate"):
        assert 'class="light good"' in _row(html, name), name
    # An FP32 model has no INT8 parity to check: the criterion is dimmed, not grey or green.
    int8 = _row(html, "int8_parity")
    assert "criterion-off" in int8 and 'class="light off"' in int8
    # The bound the gate used, the fixed-sample interval beside it, and the methods named.
    assert "Fixed-sample interval" in html
    assert "anytime-valid confidence sequence" in html
    assert "empirical-Bernstein confidence sequence (Waudby-Smith &amp; Ramdas 2023)" in html
    assert "beta-binomial mixture confidence sequence" in html
    assert "Wilson score" in html and "Student t" in html
    agreement = _row(html, "agreement_floor")
    assert re.search(r"\[0\.9\d\d, 0\.9\d\d\]", agreement)  # the fixed-sample interval
    assert '<td class="num">≥ 0.900</td>' in agreement
    assert "no criterion is waiting for more judged items" in html
    assert "by lead" in html and "on gate policy version 1" in html
    assert f'href="/api/v1/gate-evaluations/{evaluation.pk}"' in html
    assert 'name="target"' in html and 'name="share"' in html
    assert f'name="evaluation" value="{evaluation.pk}"' in html
    assert "None" not in html and "nan" not in html


def test_a_failing_evaluation_names_the_failed_criterion_in_red_and_offers_no_request(
    monkeypatch, data, client_for, ml_lead
):
    _evaluated(monkeypatch, data, ml_lead, FAILING)

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert "Fails the gate on error rate." in html
    assert 'class="light big bad"' in html
    error_rate = _row(html, "error_rate")
    assert 'class="light bad"' in error_rate and "2.00%" in error_rate and "≤ 0.50%" in error_rate
    assert "the latest evaluation does not pass the gate" in html
    assert 'name="target"' not in html


def test_an_insufficient_evaluation_is_grey_and_says_how_many_more_items_it_needs(
    monkeypatch, data, client_for, ml_lead
):
    evaluation = _evaluated(monkeypatch, data, ml_lead, THIN)
    needs = evaluation.snapshot["needs"]
    assert needs["judged_items"] > 0 and needs["double_inspected"] > 0

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert "Not enough evidence to decide yet on judged items" in html
    assert 'class="light big none"' in html
    assert 'class="light none"' in _row(html, "sample_size")
    assert f"about {needs['judged_items']:,} more judged items" in html
    assert f"about {needs['double_inspected']:,} more double-inspected items" in html
    assert f"label a needs {needs['per_label']['a']:,} more" in html
    assert "does not pass the gate (not enough evidence never promotes)" in html


def test_a_passing_evaluation_older_than_the_policy_allows_offers_no_request(
    monkeypatch, data, client_for, ml_lead
):
    evaluation = _evaluated(monkeypatch, data, ml_lead, PASSING)
    GateEvaluation.objects.filter(pk=evaluation.pk).update(
        created_at=timezone.now() - timedelta(hours=25)
    )

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert "Passes the gate" in html
    assert "older than the policy&#x27;s 24 hours. Evaluate again." in html
    assert 'name="target"' not in html


def test_a_policy_edited_since_the_evaluation_asks_for_a_new_one(
    monkeypatch, data, client_for, ml_lead, admin_user
):
    _evaluated(monkeypatch, data, ml_lead, PASSING)
    gate_policy_update(queue=data.queue, values={"window_days": 14}, actor=admin_user)

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert "it used version 1, the current one is 2" in html
    assert 'name="target"' not in html


def test_a_pending_request_is_shown_instead_of_the_form(monkeypatch, data, client_for, ml_lead):
    evaluation = _evaluated(monkeypatch, data, ml_lead, PASSING)
    pending = PromotionRequest.objects.create(
        queue=data.queue,
        model_version=data.fp32,
        target="canary",
        share=0.05,
        evaluation=evaluation,
        requested_by=ml_lead,
    )

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert f"Promotion request #{pending.pk} (to canary at 5%, by lead) is pending" in html
    assert 'name="target"' not in html


def test_evaluate_now_stores_an_evaluation_and_comes_back_to_the_page(
    monkeypatch, data, client_for, ml_lead
):
    evidence_patch(monkeypatch, **FAILING)
    client = client_for(ml_lead)

    response = client.post(f"{PAGE}evaluate")

    assert response.status_code == 302
    assert response["Location"] == PAGE
    evaluation = GateEvaluation.objects.get()
    assert (evaluation.model_version, evaluation.evaluated_by) == (data.fp32, ml_lead)
    assert AuditEvent.objects.filter(action="gate.evaluate").count() == 1
    html = client.get(PAGE).content.decode()
    assert "Evaluated m:1: Fails the gate on error rate." in html
    assert 'data-criterion="error_rate"' in html


def test_an_older_evaluation_can_be_opened_and_says_it_is_not_the_latest(
    monkeypatch, data, client_for, ml_lead
):
    first = _evaluated(monkeypatch, data, ml_lead, THIN)
    latest = _evaluated(monkeypatch, data, ml_lead, PASSING)

    html = client_for(ml_lead).get(f"{PAGE}?evaluation={first.pk}").content.decode()

    assert f"Evaluation #{first.pk}," in html
    assert f"The latest is #{latest.pk}" in html
    assert "This is an older evaluation: a request relies on the latest one." in html
    assert 'name="target"' not in html


@pytest.mark.parametrize(
    "path",
    [
        "/rollout/parts-gate/gate/m:404/",
        "/rollout/nowhere/gate/m:1/",
        f"{PAGE}?evaluation=abc",
        f"{PAGE}?evaluation=0",
        f"{PAGE}?evaluation={2**70}",
        f"{PAGE}?evaluation=999999",
        # Digits to str.isdigit() but not ASCII, neither an id: a superscript two (int()
        # refuses it, which was a 500) and an Arabic-Indic one (int() reads it as 1).
        pytest.param(f"{PAGE}?evaluation=%C2%B2", marks=pytest.mark.security),
        pytest.param(f"{PAGE}?evaluation=%D9%A1", marks=pytest.mark.security),
        pytest.param(f"{PAGE}?evaluation={'9' * 5000}", marks=pytest.mark.security),
    ],
)
def test_an_unknown_queue_version_or_evaluation_is_a_404(data, client_for, ml_lead, path):
    assert client_for(ml_lead).get(path).status_code == 404


def test_a_version_of_another_queue_is_not_found_on_this_queue(data, client_for, ml_lead, queue):
    response = client_for(ml_lead).post("/rollout/digits/gate/m:1/evaluate")
    assert response.status_code == 404
    assert not GateEvaluation.objects.exists()


def test_an_evaluation_of_another_version_is_not_shown_here(monkeypatch, data, client_for, ml_lead):
    evidence_patch(monkeypatch, **PASSING)
    other = gate_evaluation_run(model_version=data.int8, actor=ml_lead)
    assert client_for(ml_lead).get(f"{PAGE}?evaluation={other.pk}").status_code == 404


def test_the_overview_and_each_report_link_a_version_to_its_gate_and_its_page(
    data, client_for, ml_lead
):
    client = client_for(ml_lead)
    overview = client.get("/overview/").content.decode()
    report = client.get("/overview/parts-gate/agreement/?model=m:1").content.decode()
    for html in (overview, report):
        assert 'href="/rollout/parts-gate/gate/m:1/"' in html
        assert 'href="/models/m:1/"' in html
    assert 'href="/rollout/parts-gate/gate/m:1-int8/"' in overview
