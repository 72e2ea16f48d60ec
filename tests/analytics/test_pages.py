"""The analytics pages: who may see them, that each renders with data, the CSV, the charts."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import quote

import plotly.graph_objects as go
import pytest

from analytics import charts
from analytics.days import utc_today
from analytics.registry import REPORT_KINDS, report_build
from analytics.selectors import ReportScope
from deployments.scoring import predictions_score
from inspections.models import Item
from inspections.services import item_create, judgment_record

pytestmark = pytest.mark.django_db

PAGES = ["/overview/", *(f"/overview/digits/{kind}/" for kind in REPORT_KINDS)]
EXPORT = "/overview/digits/export.csv"


@pytest.fixture
def judged(queue, shadow_model, digits_split, inspector, inspector2):
    """Twenty scored digits, judged with some mistakes; the first five judged twice."""
    items = [
        item_create(queue=queue, external_id=f"d{n}", features=[float(v) for v in row])
        for n, row in enumerate(digits_split.holdout_x[:20])
    ]
    predictions_score(model_version_id=shadow_model.pk, item_ids=[item.pk for item in items])
    Item.objects.filter(pk__in=[item.pk for item in items[:5]]).update(judgments_needed=2)
    for n, (item, truth) in enumerate(zip(items, digits_split.holdout_y[:20], strict=True)):
        label = str(truth if n % 4 else (truth + 1) % 10)
        judgment_record(item=item, inspector=inspector, label=label, seconds_spent=2)
        if n < 5:
            judgment_record(item=item, inspector=inspector2, label=str(truth), seconds_spent=2)
    return shadow_model


def _query(model_version) -> str:
    today = utc_today().isoformat()
    return f"?model={model_version.key}&since={today}&until={today}"


@pytest.mark.parametrize("path", [*PAGES, EXPORT])
def test_ml_leads_and_admins_see_every_page_with_data(
    client_for, ml_lead, admin_user, judged, path
):
    for user in (ml_lead, admin_user):
        response = client_for(user).get(path + _query(judged))
        assert response.status_code == 200, (user, path)


@pytest.mark.parametrize("path", [*PAGES, EXPORT])
def test_inspectors_get_403_on_every_page(client_for, inspector, judged, path):
    assert client_for(inspector).get(path).status_code == 403


@pytest.mark.parametrize("path", [*PAGES, EXPORT])
def test_anonymous_visitors_are_sent_to_log_in(client_for, judged, path):
    response = client_for(None).get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_each_report_page_links_its_json_and_holds_one_figure_per_chart(
    client_for, ml_lead, judged, kind
):
    page = client_for(ml_lead).get(f"/overview/digits/{kind}/" + _query(judged)).content.decode()
    today = utc_today().isoformat()
    assert (
        f'href="/api/v1/queues/digits/reports/{kind}?model=digits-mlp%3A1&amp;since={today}'
        f"&amp;until={today}" in page
    )
    containers = page.count("data-chart=")
    scripts = page.count('<script id="chart-')
    assert containers == scripts
    if kind != "baseline":  # baseline has a chart too, asserted below
        assert containers >= 1
    assert "<script>" not in page  # no inline script: the CSP stays strict


def test_the_disagreement_rows_link_to_their_adjudication_page(client_for, ml_lead, judged):
    page = client_for(ml_lead).get("/overview/digits/disagreements/" + _query(judged))
    text = page.content.decode()
    assert page.context["report"].total > 0
    assert page.context["report"].rows
    key = page.context["model_version"].key
    for row in page.context["report"].rows:
        assert f'href="/overview/digits/adjudicate/{row.item_id}/?model={quote(key)}"' in text
        assert (
            client_for(ml_lead)
            .get(f"/overview/digits/adjudicate/{row.item_id}/?model={key}")
            .status_code
            == 200
        )


def test_a_filter_narrows_the_disagreements(client_for, ml_lead, judged):
    response = client_for(ml_lead).get(
        "/overview/digits/disagreements/" + _query(judged) + "&inspector=inspector2"
    )
    assert response.status_code == 200
    assert all(row.inspector == "inspector2" for row in response.context["report"].rows)


def test_a_bad_date_is_a_400_with_the_reason(client_for, ml_lead, judged):
    response = client_for(ml_lead).get("/overview/digits/agreement/?since=yesterday")
    assert response.status_code == 400
    assert "since must be an ISO date" in response.content.decode()


def test_an_unknown_report_kind_is_a_404(client_for, ml_lead, judged):
    assert client_for(ml_lead).get("/overview/digits/horoscope/").status_code == 404


def test_the_overview_shows_headline_figures_with_lights(client_for, ml_lead, judged):
    page = client_for(ml_lead).get("/overview/").content.decode()
    for name in ("Cohen&#x27;s kappa", "Drifted-feature share", "Latency p95", "calibration"):
        assert name in page
    assert page.count('class="num figure-agreement"') == 1
    assert "green when the whole 95% Wilson interval is at or above 0.950" in page
    # Twenty items, five judged twice: too few for any light of agreement or kappa.
    assert page.count("25 compared judgments; lights need 50.") == 2
    assert 'class="light green"' not in page


def test_the_csv_has_one_row_per_item_with_features_decisions_and_prediction(
    client_for, ml_lead, judged, queue
):
    response = client_for(ml_lead).get(EXPORT + _query(judged))
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == Item.objects.filter(queue=queue).count() == 20
    assert list(rows[0])[:3] == ["external_id", "received_at", "feature_0"]
    assert list(rows[0])[-6:] == [
        "human_status",
        "human_labels",
        "inspectors",
        "prediction_status",
        "prediction_label",
        "confidence",
    ]
    assert f"feature_{queue.input_width - 1}" in rows[0]
    by_id = {row["external_id"]: row for row in rows}
    for item in Item.objects.filter(queue=queue).prefetch_related("judgments", "predictions"):
        row = by_id[item.external_id]
        prediction = item.predictions.get(model_version=judged)
        assert row["prediction_label"] == prediction.label
        assert float(row["confidence"]) == pytest.approx(prediction.confidence)
        assert sorted(row["human_labels"].split(";")) == sorted(
            j.label for j in item.judgments.all()
        )
        assert [float(row[f"feature_{n}"]) for n in range(queue.input_width)] == item.features
    assert by_id["d0"]["inspectors"] == "inspector1;inspector2"


@pytest.mark.parametrize("kind", REPORT_KINDS)
def test_every_chart_is_a_valid_plotly_figure_with_axis_titles(queue, judged, kind):
    today = utc_today()
    scope = ReportScope(queue=queue, model_version=judged, since=today, until=today)
    report = report_build(kind=kind, scope=scope, options={})
    built = charts.report_charts(kind, report)
    assert built, kind
    for chart in built:
        if chart.empty:  # nothing to draw (no prediction failed): a sentence instead
            assert chart.empty.endswith(".") and not chart.figure
            continue
        json.dumps(chart.figure, allow_nan=False)  # NaN would break JSON.parse in the browser
        figure = go.Figure(chart.figure)  # raises on any property plotly does not know
        assert figure.data, chart.element_id
        layout = chart.figure["layout"]
        assert layout["xaxis"]["title"]["text"]
        assert layout["yaxis"]["title"]["text"]
    assert len({chart.element_id for chart in built}) == len(built)


def test_the_confusion_heatmap_is_row_normalised(queue, judged):
    today = utc_today()
    scope = ReportScope(queue=queue, model_version=judged, since=today, until=today)
    report = report_build(kind="agreement", scope=scope, options={})
    heatmap = charts.agreement_charts(report)[0].figure["data"][0]
    for row, counts in zip(heatmap["z"], report.confusion, strict=True):
        if sum(counts):
            assert sum(row) == pytest.approx(1.0)
            assert row == pytest.approx([c / sum(counts) for c in counts])


# Bounded work: each page shows the reason in its form with 400, never a 500 or a long wait.
REPORT = "/overview/digits/{kind}/?model=digits-mlp:1"
BOUNDED_PAGES = [
    pytest.param(REPORT.format(kind="agreement") + "&since=0001-01-01", "since must be 2000-01-01"),
    pytest.param("/overview/digits/agreement/?until=0001-01-01", "until must be 2000-01-01"),
    pytest.param(REPORT.format(kind="disagreements") + "&until=9999-12-31", "until must be"),
    pytest.param("/overview/?until=0001-01-01", "until must be 2000-01-01"),
    pytest.param("/overview/?since=2001-01-01", "at most 400 days"),
    pytest.param(EXPORT + "?since=0001-01-01", "since must be 2000-01-01"),
    pytest.param(EXPORT + "?since=2001-01-01", "at most 400 days"),
    pytest.param(EXPORT + "?model=ghost:1", "has no model version 'ghost:1'"),
    pytest.param(REPORT.format(kind="drift").replace(":1", ":7"), "has no model version"),
    pytest.param(
        REPORT.format(kind="disagreements") + "&page=999999999999999999999", "page must be"
    ),
    pytest.param(REPORT.format(kind="disagreements") + "&human_label=cat", "human_label must"),
    pytest.param(REPORT.format(kind="disagreements") + "&inspector=nobody", "no inspector"),
]


@pytest.mark.security
@pytest.mark.parametrize(("url", "message"), BOUNDED_PAGES)
def test_an_out_of_bounds_value_is_a_400_page_saying_why(client_for, ml_lead, judged, url, message):
    response = client_for(ml_lead).get(url)

    assert response.status_code == 400
    assert message in response.content.decode()


@pytest.mark.security
def test_a_disagreements_page_past_the_last_shows_the_last_page(client_for, ml_lead, judged):
    response = client_for(ml_lead).get(
        "/overview/digits/disagreements/" + _query(judged) + "&page_size=2&page=999999"
    )

    assert response.status_code == 200
    report = response.context["report"]
    assert report.page == report.pages > 1
    assert report.rows


@pytest.mark.security
def test_the_csv_writes_a_client_formula_as_text_and_negative_features_as_numbers(
    client_for, ml_lead, queue, shadow_model
):
    features = [-1.5, *([0.0] * (queue.input_width - 1))]
    for external_id in ('=HYPERLINK("http://evil")', "+1", "-2", "@SUM(A1)", "plain"):
        item_create(queue=queue, external_id=external_id, features=features)

    response = client_for(ml_lead).get(EXPORT + _query(shadow_model))

    text = b"".join(response.streaming_content).decode()
    ids = [row["external_id"] for row in csv.DictReader(io.StringIO(text))]
    assert sorted(ids) == sorted(
        ['\'=HYPERLINK("http://evil")', "'+1", "'-2", "'@SUM(A1)", "plain"]
    )
    assert all(line.split(",")[2] == "-1.5" for line in text.splitlines()[1:] if line)
