"""An ml_lead opens every analytics page in a real browser; every chart draws, no console error."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from analytics.selectors import REPORT_KINDS
from deployments import scoring
from deployments.models import Prediction
from inspections.models import Item
from inspections.services import item_create, judgment_record
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _evidence(queue, shadow_model, digits_split, inspector, inspector2, count=60):
    """Scored and judged digits, every fifth judged twice, some of them wrongly."""
    rows, truth = digits_split.holdout_x, digits_split.holdout_y
    items = [
        item_create(queue=queue, external_id=f"scan-{n:03d}", features=rows[n].tolist())
        for n in range(count)
    ]
    scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=[i.pk for i in items])
    Item.objects.filter(pk__in=[i.pk for i in items[::5]]).update(judgments_needed=2)
    for n, item in enumerate(items):
        item.refresh_from_db()
        label = str(truth[n] if n % 7 else (truth[n] + 3) % 10)
        judgment_record(item=item, inspector=inspector, label=label, seconds_spent=2)
        if item.judgments_needed == 2:
            second = str(truth[n] if n % 3 else (truth[n] + 1) % 10)
            judgment_record(item=item, inspector=inspector2, label=second, seconds_spent=3)
    assert Prediction.objects.filter(status="ok").count() == count


def test_an_ml_lead_sees_every_chart_render_without_console_errors(
    page: Page,
    live_server,
    ml_lead,
    inspector,
    inspector2,
    queue,
    shadow_model,
    digits_split,
    artifacts,
):
    _evidence(queue, shadow_model, digits_split, inspector, inspector2)
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.set_viewport_size({"width": 1366, "height": 860})

    page.goto(f"{live_server.url}/accounts/login/?next=/overview/")
    page.fill("input[name=username]", ml_lead.username)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/overview/")
    expect(page.locator("td.figure-agreement .light")).to_have_count(1)
    page.screenshot(path=str(artifacts / "analytics-overview.png"), full_page=True)

    for kind in REPORT_KINDS:
        page.goto(f"{live_server.url}/overview/digits/{kind}/?model={shadow_model.key}")
        page.wait_for_load_state("load")
        expected = page.locator("[data-chart]").count()
        assert expected >= 1, kind
        expect(page.locator(".js-plotly-plot")).to_have_count(expected)
        expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible()
        page.screenshot(path=str(artifacts / f"analytics-{kind}.png"), full_page=True)
        assert console_errors == [], (kind, console_errors)
