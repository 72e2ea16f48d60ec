"""Every report, as JSON and as a page, and the overview, filtered to the audit sample."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest

from analytics import services
from analytics.registry import REPORT_KINDS
from deployments.models import Prediction
from inspections.models import Item
from tests.analytics.audit_data import audit_data_build, audit_data_populate, audit_item_ids

pytestmark = pytest.mark.django_db

KINDS = list(REPORT_KINDS)


@pytest.fixture
def live_traffic():
    """Two days of live traffic: closed yesterday (rolled up) and the open day."""
    data = audit_data_build(slug="digits-live")
    today = services.utc_today()
    audit_data_populate(data, seed=11, n=150, days=[today - timedelta(days=1), today])
    services.rollups_refresh(today=today)
    return data


def _range() -> str:
    today = services.utc_today()
    return f"since={today - timedelta(days=1)}&until={today}"


def _api(kind: str, model: str = "m:2", sample: str | None = "audit") -> str:
    url = f"/api/v1/queues/digits-live/reports/{kind}?model={model}&{_range()}"
    return url + (f"&sample={sample}" if sample is not None else "")


def _page(kind: str, model: str = "m:2", sample: str | None = "audit") -> str:
    url = f"/overview/digits-live/{kind}/?model={model}&{_range()}"
    return url + (f"&sample={sample}" if sample is not None else "")


def _expected(data, version) -> dict[str, int]:
    """Return the figures each report should show on the version's audit sample, raw."""
    ids = audit_item_ids(data, version)
    ok = {
        p.item_id: p.label
        for p in Prediction.objects.filter(model_version=version, item__in=ids, status="ok")
    }
    items = Item.objects.filter(pk__in=ids).prefetch_related("judgments")
    compared = disagreeing = consensus = baseline = 0
    for item in items:
        labels = [j.label for j in item.judgments.all()]
        if item.pk not in ok:
            continue
        compared += len(labels)
        disagreeing += sum(label != ok[item.pk] for label in labels)
        consensus += item.human_status == "complete" and len(set(labels)) == 1
        baseline += len(labels) >= 2
    return {
        "items": len(ids),
        "scored": Prediction.objects.filter(model_version=version, item__in=ids).count(),
        "ok": len(ok),
        "compared": compared,
        "disagreeing": disagreeing,
        "consensus": consensus,
        "baseline": baseline,
    }


def _figures(report: dict, kind: str) -> int:
    """Return the one count per report kind the test compares with the raw figure."""
    return {
        "agreement": lambda: report["agreement"]["n"],
        "baseline": lambda: report["items"],
        "disagreements": lambda: report["total"],
        "drift": lambda: report["current_rows"],
        "confidence": lambda: report["n"],
        "operations": lambda: report["predictions"],
    }[kind]()


RAW_KEY = {
    "agreement": "compared",
    "baseline": "baseline",
    "disagreements": "disagreeing",
    "drift": "ok",
    "confidence": "consensus",
    "operations": "scored",
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_json_report_reads_only_the_audit_items_of_its_version(
    client_for, ml_lead, live_traffic, kind
):
    client = client_for(ml_lead)
    for version in (live_traffic.live, live_traffic.canary):
        expected = _expected(live_traffic, version)
        body = client.get(_api(kind, model=version.key)).json()
        assert body["sample"] == "audit"
        assert "audit sample" in body["sample_text"]
        assert _figures(body["report"], kind) == expected[RAW_KEY[kind]]
    every = client.get(_api(kind, sample=None)).json()
    assert every["sample"] == "all"
    audit = client.get(_api(kind)).json()
    # Every item holds the audit items and more.
    assert _figures(every["report"], kind) > _figures(audit["report"], kind)
    assert client.get(_api(kind, sample="all")).json() == every


def test_the_audit_disagreements_list_only_audit_items(client_for, ml_lead, live_traffic):
    body = client_for(ml_lead).get(_api("disagreements") + "&page_size=500").json()["report"]
    ids = audit_item_ids(live_traffic, live_traffic.canary)
    assert body["rows"] and {row["item_id"] for row in body["rows"]} <= ids
    assert len(body["rows"]) == body["total"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", ["AUDIT", "some", "all,audit", "x" * 300])
def test_a_bad_sample_is_a_400_with_a_sentence_on_every_report(
    client_for, ml_lead, live_traffic, kind, bad
):
    client = client_for(ml_lead)
    response = client.get(_api(kind, sample=bad))
    assert response.status_code == 400
    assert "sample must be 'all'" in response.json()["detail"]
    page = client.get(_page(kind, sample=bad))
    assert page.status_code == 400
    assert "sample must be &#x27;all&#x27;" in page.content.decode()


def test_a_bad_sample_is_a_400_on_the_overview_and_the_export(client_for, ml_lead, live_traffic):
    client = client_for(ml_lead)
    overview = client.get("/overview/?sample=nope")
    assert overview.status_code == 400
    assert "sample must be" in overview.content.decode()
    export = client.get("/overview/digits-live/export.csv?model=m:2&sample=nope")
    assert export.status_code == 400
    assert "sample must be" in export.content.decode()


@pytest.mark.parametrize("kind", KINDS)
def test_each_page_says_which_sample_it_shows_and_switches_between_them(
    client_for, ml_lead, live_traffic, kind
):
    client = client_for(ml_lead)
    audit = client.get(_page(kind)).content.decode()
    assert '<a href="/overview/digits-live/' in audit
    assert 'data-sample="audit" aria-current="true">Audit sample</a>' in audit
    assert "The audit sample: items m:2 decided at intake" in audit
    # The JSON, CSV and the other reports' links keep the sample.
    assert f"/api/v1/queues/digits-live/reports/{kind}?model=m%3A2" in audit
    assert audit.count("sample=audit") >= len(KINDS) + 2
    every = client.get(_page(kind, sample=None)).content.decode()
    assert 'data-sample="all" aria-current="true">Every item</a>' in every
    assert "Every item received in the range" in every
    # The switch leads from one to the other, the rest of the query kept.
    assert f"/overview/digits-live/{kind}/?model=m%3A2&amp;since=" in every
    assert "sample=audit" in every.split('data-sample="audit"')[0].rsplit("<a", 1)[1]


def test_an_empty_audit_sample_reads_as_a_sentence(client_for, ml_lead, live_traffic):
    client = client_for(ml_lead)
    for kind in KINDS:
        html = client.get(_page(kind, model="m:3")).content.decode()
        assert "o audit items yet: m:3 decided no item received" in html, kind
        assert not re.search(r"\bnan\b", html)
    body = client.get(_api("agreement", model="m:3")).json()["report"]
    assert body["empty_reason"].startswith("No audit items yet: m:3")
    drift = client.get(_api("drift", model="m:3")).json()["report"]
    assert drift["available"] is False and drift["reason"].startswith("no audit items yet")


def test_the_overview_on_the_audit_sample_counts_audit_items_per_version(
    client_for, ml_lead, live_traffic
):
    html = client_for(ml_lead).get(f"/overview/?sample=audit&{_range()}").content.decode()
    audited = len(audit_item_ids(live_traffic, live_traffic.live)) + len(
        audit_item_ids(live_traffic, live_traffic.canary)
    )
    assert f'<span class="value">{audited}</span><span class="name">audit items</span>' in html
    assert 'data-sample="audit" aria-current="true"' in html
    # The shadow version decides nothing: no figures, a sentence instead.
    assert "no audit items yet" in html
    assert html.count('td class="num figure-agreement"') == 2
    assert "sample=audit" in html.split("Reports</th>")[1]


def test_the_overview_figures_on_the_audit_sample_match_the_version_reports(
    client_for, ml_lead, live_traffic
):
    from analytics.overview import queue_overview

    today = services.utc_today()
    overview = queue_overview(
        queue=live_traffic.queue, since=today - timedelta(days=1), until=today, sample="audit"
    )
    figures = {v.model_version.key: v for v in overview.versions}
    for version in (live_traffic.live, live_traffic.canary):
        expected = _expected(live_traffic, version)
        assert figures[version.key].compared == expected["compared"]
        assert figures[version.key].predictions == expected["scored"]
    assert figures["m:3"].figures == [] and figures["m:3"].empty_reason
    waiting = Item.objects.filter(
        queue=live_traffic.queue, audit_sample=True, human_status="pending"
    ).count()
    assert overview.awaiting_judgment == waiting


def test_the_csv_of_the_audit_sample_has_its_items_only(client_for, ml_lead, live_traffic):
    response = client_for(ml_lead).get(
        f"/overview/digits-live/export.csv?model=m:2&{_range()}&sample=audit"
    )
    assert response.status_code == 200
    assert "-audit.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = Item.objects.filter(pk__in=audit_item_ids(live_traffic, live_traffic.canary))
    assert sorted(row["external_id"] for row in rows) == sorted(
        expected.values_list("external_id", flat=True)
    )
