"""The reports JSON API: who may read it, what it refuses, and what it returns."""

from __future__ import annotations

import pytest

from deployments.models import Prediction
from deployments.scoring import predictions_score
from inspections.models import Item
from inspections.services import item_create, judgment_record

pytestmark = pytest.mark.django_db

URL = "/api/v1/queues/digits/reports/{kind}?model=digits-mlp:1"
KINDS = ["agreement", "baseline", "disagreements", "drift", "confidence", "operations"]


@pytest.fixture
def evidence(queue, shadow_model, digits_split, inspector, inspector2):
    """Twelve scored digits judged once, four of them twice."""
    items = [
        item_create(queue=queue, external_id=f"d{n}", features=[float(v) for v in row])
        for n, row in enumerate(digits_split.holdout_x[:12])
    ]
    Item.objects.filter(pk__in=[item.pk for item in items[:4]]).update(judgments_needed=2)
    predictions_score(model_version_id=shadow_model.pk, item_ids=[item.pk for item in items])
    for n, (item, truth) in enumerate(zip(items, digits_split.holdout_y[:12], strict=True)):
        item.refresh_from_db()
        wrong = str((int(truth) + 1) % 10)
        judgment_record(
            item=item,
            inspector=inspector,
            label=wrong if n % 3 == 0 else str(truth),
            seconds_spent=2,
        )
        if n < 4:
            judgment_record(item=item, inspector=inspector2, label=str(truth), seconds_spent=2)
    return shadow_model


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 401), ("outsider", 403), ("inspector", 403), ("ml_lead", 200), ("admin_user", 200)],
)
def test_only_ml_leads_and_admins_read_reports(request, client_for, evidence, who, status):
    user = request.getfixturevalue(who) if who else None
    for kind in KINDS:
        response = client_for(user).get(URL.format(kind=kind))
        assert response.status_code == status, (kind, response.content)


def test_inspectors_never_see_a_figure(client_for, inspector, evidence):
    body = client_for(inspector).get(URL.format(kind="agreement")).json()
    assert set(body) == {"detail"}


def test_every_report_answers_with_its_figures(client_for, ml_lead, evidence):
    client = client_for(ml_lead)
    agreement = client.get(URL.format(kind="agreement")).json()["report"]
    judged = 16
    assert agreement["agreement"]["n"] == judged
    assert agreement["rule"] == "each"
    assert "each judgment" in agreement["rule_text"]
    expected = sum(
        1
        for p in Prediction.objects.filter(model_version=evidence, status="ok")
        for j in p.item.judgments.all()
        if j.label == p.label
    )
    assert agreement["agreement"]["agreed"] == expected
    consensus = client.get(URL.format(kind="agreement") + "&rule=consensus").json()["report"]
    assert consensus["agreement"]["n"] == 12 - sum(
        1
        for item in Item.objects.filter(judgments_needed=2)
        if len(set(item.judgments.values_list("label", flat=True))) > 1
    )
    baseline = client.get(URL.format(kind="baseline")).json()["report"]
    assert baseline["items"] == 4
    drift = client.get(URL.format(kind="drift")).json()["report"]
    assert drift["available"] is True and len(drift["features"]) == 64
    assert drift["thresholds"]["psi_moderate"] == 0.1
    disagreements = client.get(URL.format(kind="disagreements") + "&page_size=2").json()["report"]
    assert disagreements["total"] == judged - agreement["agreement"]["agreed"]
    assert len(disagreements["rows"]) == min(2, disagreements["total"])
    filtered = client.get(URL.format(kind="disagreements") + "&inspector=inspector2").json()
    assert all(row["inspector"] == "inspector2" for row in filtered["report"]["rows"])
    confidence = client.get(URL.format(kind="confidence")).json()["report"]
    assert len(confidence["coverage_thresholds"]) == 100
    operations = client.get(URL.format(kind="operations")).json()["report"]
    assert operations["predictions"] == 12
    assert operations["latency_ms"]["fp32"]["n"] == 12


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/api/v1/queues/nope/reports/agreement?model=digits-mlp:1", 404, "no queue"),
        (URL.format(kind="agreement").replace(":1", ":9"), 404, "no model version"),
        ("/api/v1/queues/digits/reports/agreement", 400, "<name>:<version>"),
        (URL.format(kind="weather"), 400, "unknown report"),
        (URL.format(kind="agreement") + "&since=yesterday", 400, "ISO date"),
        (URL.format(kind="agreement") + "&since=2026-02-02&until=2026-01-01", 400, "after"),
        (URL.format(kind="agreement") + "&rule=majority", 400, "rule"),
        (URL.format(kind="disagreements") + "&page=0", 400, "page"),
    ],
)
def test_bad_requests_get_a_clear_message(client_for, ml_lead, evidence, url, status, message):
    response = client_for(ml_lead).get(url)
    assert response.status_code == status
    assert message in response.json()["detail"]


# Bounded work: every value a request gives is checked before any work is done.
BOUNDED = [
    pytest.param(
        "agreement", "&since=0001-01-01", "since must be 2000-01-01 or later", id="ancient"
    ),
    pytest.param("agreement", "&until=0001-01-01", "until must be 2000-01-01 or later", id="until"),
    pytest.param("disagreements", "&until=9999-12-31", "until must be", id="far-future"),
    pytest.param("drift", "&since=2001-01-01", "at most 400 days", id="too-long"),
    pytest.param(
        "disagreements", "&page=999999999999999999999", "page must be a whole number", id="page"
    ),
    pytest.param(
        "disagreements", "&page_size=100000", "page_size must be from 1 to 500", id="size"
    ),
    pytest.param("disagreements", "&human_label=cat", "human_label must be a label", id="label"),
    pytest.param("disagreements", "&model_label=%3Cb%3E", "model_label must be a label", id="html"),
    pytest.param("disagreements", "&inspector=nobody", "there is no inspector 'nobody'", id="who"),
    pytest.param("disagreements", "&inspector=" + "x" * 10_000, "no inspector", id="long"),
    pytest.param("agreement", "&sample=" + "x" * 10_000, "sample must be", id="sample"),
]


@pytest.mark.security
@pytest.mark.parametrize(("kind", "query", "message"), BOUNDED)
def test_an_out_of_bounds_value_is_a_400_with_a_short_clear_detail(
    client_for, ml_lead, evidence, kind, query, message
):
    response = client_for(ml_lead).get(URL.format(kind=kind) + query)

    assert response.status_code == 400
    detail = response.json()["detail"]
    assert message in detail
    assert len(detail) < 400


@pytest.mark.security
def test_a_page_past_the_last_shows_the_last_page(client_for, ml_lead, evidence):
    response = client_for(ml_lead).get(URL.format(kind="disagreements") + "&page=999999")

    assert response.status_code == 200
    report = response.json()["report"]
    assert report["page"] == report["pages"] == 1
    assert report["rows"]
