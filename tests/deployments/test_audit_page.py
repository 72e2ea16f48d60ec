"""The audit log page and CSV: filters checked, newest first, paged, exported with a cap."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from deployments import audit_log
from deployments.audit import audit_record
from deployments.models import AuditEvent
from deployments.promotions import promotion_approve, promotion_request_create
from deployments.rollout import kill_switch_set
from tests.deployments.rollout_factories import deployment_make, evaluation_make, version_make

pytestmark = pytest.mark.django_db


def _at(event: AuditEvent, when: str) -> None:
    AuditEvent.objects.filter(pk=event.pk).update(
        created_at=datetime.fromisoformat(when).replace(tzinfo=UTC)
    )


@pytest.fixture
def history(queue, other_queue, ml_lead, admin_user):
    """A promotion requested and approved on digits, a kill switch flipped on parts."""
    version = version_make(queue, "2")
    deployment_make(version, "shadow")
    request = promotion_request_create(
        queue=queue,
        model_version=version,
        target="canary",
        share=0.05,
        evaluation=evaluation_make(version),
        actor=ml_lead,
    )
    promotion_approve(request=request, actor=admin_user, comment="fine")
    kill_switch_set(queue=other_queue, on=True, actor=admin_user)
    events = list(AuditEvent.objects.order_by("id"))
    for event, when in zip(
        events,
        ["2026-03-01T09:00", "2026-03-02T10:00", "2026-03-02T10:00", "2026-03-05T08:00"],
        strict=True,
    ):
        _at(event, when)
    return request


def _rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_page_lists_every_event_newest_first_with_its_states_and_evidence(
    client_for, ml_lead, history
):
    response = client_for(ml_lead).get("/audit/")
    assert response.status_code == 200
    html = response.content.decode()
    order = [html.index(a) for a in ("kill_switch.set", "promotion.approve", "promotion.request")]
    assert order == sorted(order)
    assert f"gate-evaluation:{history.evaluation_id}" in html
    assert "&quot;role&quot;: &quot;canary&quot;" in html
    assert "nothing before" in html  # the request had no earlier state
    assert "4 events match" in html
    assert "<script>" not in html


@pytest.mark.parametrize(
    ("query", "actions"),
    [
        ("queue=parts", ["kill_switch.set"]),
        ("action=promotion.request", ["promotion.request"]),
        ("actor=lead", ["promotion.request"]),
        ("since=2026-03-02&until=2026-03-02", ["promotion.approve", "deployment.canary_start"]),
        ("since=2026-03-03", ["kill_switch.set"]),
        ("queue=digits&actor=boss", ["promotion.approve", "deployment.canary_start"]),
    ],
)
def test_each_filter_narrows_the_page_and_the_export_alike(
    client_for, ml_lead, history, query, actions
):
    client = client_for(ml_lead)
    page = client.get(f"/audit/?{query}")
    assert page.status_code == 200
    assert [row["event"].action for row in page.context["rows"]] == actions
    export = client.get(f"/audit/export.csv?{query}")
    assert export.status_code == 200
    assert [row[2] for row in _rows(export)[1:]] == actions


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("queue=nowhere", "there is no queue"),
        ("action=DROP%20TABLE", "action must be an audit action"),
        ("actor=a%20b", "actor must be a user name"),
        ("since=yesterday", "since must be a date"),
        ("since=2026-03-05&until=2026-03-01", "is after until"),
        ("page=0", "page must be between 1 and 10,000"),
        ("page_size=1000", "page_size must be between 1 and 200"),
        ("page=two", "page must be a whole number"),
    ],
)
def test_a_bad_filter_is_a_400_that_says_what_is_wrong(client_for, admin_user, query, message):
    response = client_for(admin_user).get(f"/audit/?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()


def test_a_bad_filter_on_the_export_is_a_400_too(client_for, admin_user):
    response = client_for(admin_user).get("/audit/export.csv?since=soon")
    assert response.status_code == 400
    assert "since must be a date" in response.content.decode()


def test_the_page_is_paged(client_for, ml_lead, queue):
    for n in range(5):
        audit_record(actor=ml_lead, action="test.step", subject=queue, after={"n": n})
    client = client_for(ml_lead)
    first = client.get("/audit/?page_size=2")
    assert [row["event"].after["n"] for row in first.context["rows"]] == [4, 3]
    assert "page=2" in first.content.decode()
    last = client.get("/audit/?page_size=2&page=3")
    assert [row["event"].after["n"] for row in last.context["rows"]] == [0]
    beyond = client.get("/audit/?page_size=2&page=99")
    assert beyond.status_code == 200
    assert beyond.context["page"].number == 3


def test_the_export_has_a_header_and_a_row_per_event(client_for, admin_user, history):
    response = client_for(admin_user).get("/audit/export.csv?queue=digits")
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = _rows(response)
    assert rows[0] == audit_log.EXPORT_HEADER
    approve = next(row for row in rows if row[2] == "promotion.approve")
    assert approve[1] == "boss"
    assert approve[3] == "digits"
    assert '"status": "approved"' in approve[8]
    assert approve[9] == f"gate-evaluation:{history.evaluation_id}"


def test_the_export_stops_at_its_cap_and_says_so(queue, ml_lead):
    for n in range(4):
        audit_record(actor=ml_lead, action="test.step", subject=queue, after={"n": n})
    lines = list(audit_log.audit_csv_lines(audit_log.AuditFilters(), cap=3))
    rows = list(csv.reader(io.StringIO("".join(lines))))
    assert len(rows) == 1 + 3 + 1
    assert rows[-1] == [audit_log.export_capped_sentence(3)]
    assert "narrow the filters" in rows[-1][0]
    uncapped = list(audit_log.audit_csv_lines(audit_log.AuditFilters(), cap=4))
    assert len(uncapped) == 1 + 4


def test_the_export_keeps_a_spreadsheet_from_running_a_cell(queue, ml_lead):
    ml_lead.username = "=cmd"
    ml_lead.save()
    audit_record(actor=ml_lead, action="test.step", subject=queue)
    lines = audit_log.audit_csv_lines(audit_log.AuditFilters())
    rows = list(csv.reader(io.StringIO("".join(lines))))
    assert rows[1][1] == "'=cmd"


def test_long_states_are_shortened_on_the_page():
    text = audit_log.compact({"note": "x" * 500})
    assert len(text) == audit_log.COMPACT_MAX_CHARS
    assert text.endswith("…")
    assert audit_log.compact(None) == ""


@pytest.mark.security
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=0001-01-01", "since must be 2000-01-01 or later"),
        ("until=9999-12-31", "until must be"),
        ("since=2001-01-01&until=2026-03-01", "at most 400 days"),
        ("page=999999999999999999999", "page must be between 1 and 10,000"),
        ("page=" + "9" * 5000, "page must be a whole number"),
        ("page=-1", "page must be between 1 and 10,000"),
        ("actor=" + "x" * 10_000, "actor must be a user name"),
    ],
)
def test_out_of_bounds_dates_and_pages_are_a_400_on_the_page_and_the_export(
    client_for, admin_user, query, message
):
    client = client_for(admin_user)
    page = client.get(f"/audit/?{query}")
    assert page.status_code == 400
    assert message in page.content.decode()
    if not query.startswith("page"):  # the export has no pages
        export = client.get(f"/audit/export.csv?{query}")
        assert export.status_code == 400
        assert message in export.content.decode()


@pytest.mark.security
def test_one_open_end_may_stay_open_for_any_span(client_for, admin_user, history):
    # The page and the export are capped by rows, so "everything since 2000" is bounded.
    response = client_for(admin_user).get("/audit/?since=2000-01-01")
    assert response.status_code == 200
    assert len(response.context["rows"]) == 4


@pytest.mark.security
def test_every_text_cell_a_spreadsheet_would_run_is_quoted_in_the_export(queue, ml_lead):
    audit_record(
        actor=ml_lead,
        action="test.step",
        subject=queue,
        after={"note": "=HYPERLINK(1)"},
        evidence="+cmd|' /C calc'!A0",
    )
    lines = audit_log.audit_csv_lines(audit_log.AuditFilters())
    row = list(csv.reader(io.StringIO("".join(lines))))[1]
    assert row[9] == "'+cmd|' /C calc'!A0"
    assert row[8] == '{"note": "=HYPERLINK(1)"}'  # JSON starts with "{": nothing to run
