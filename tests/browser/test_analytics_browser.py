"""After `manage.py demo` and `manage.py simulate`, with a real worker scoring the items, an
ml_lead opens every analytics page in a real browser: every chart draws, no console error."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from analytics.registry import REPORT_KINDS
from deployments.models import Deployment, ModelVersion, Prediction
from inspections.models import Item, Judgment
from shadowlab.demo import MODEL_NAME, MODEL_VERSION
from tests.conftest import PASSWORD
from tests.integration.conftest import wait_until

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_ml_lead_sees_every_chart_render_without_console_errors(
    page: Page, live_server, worker, settings, artifacts
):
    settings.SHADOWLAB_DEMO_PASSWORD = PASSWORD
    worker.start()
    call_command("demo", items=60, verbosity=0)
    call_command("simulate", items=240, drift=0.6, seed=7, verbosity=0)
    versions = ModelVersion.objects.filter(name=MODEL_NAME).count()
    # The FP32 model, its INT8 variant and the weaker candidate, all in shadow.
    assert versions == Deployment.objects.filter(role=Deployment.Role.SHADOW).count() == 3
    wait_until(
        lambda: Prediction.objects.count() == versions * Item.objects.count(),
        timeout=120,
        message=f"the worker did not score every item; see {worker.log_path}",
    )
    # The demo queue sends a tenth of the items to a panel of three inspectors.
    assert Judgment.objects.count() > 240
    fp32 = ModelVersion.objects.get(name=MODEL_NAME, version=MODEL_VERSION)

    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.set_viewport_size({"width": 1366, "height": 860})

    page.goto(f"{live_server.url}/accounts/login/?next=/overview/")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/overview/")
    expect(page.locator("td.figure-agreement .light")).to_have_count(versions)
    page.screenshot(path=str(artifacts / "analytics-overview.png"), full_page=True)

    for kind in REPORT_KINDS:
        page.goto(f"{live_server.url}/overview/digits/{kind}/?model={fp32.key}")
        page.wait_for_load_state("load")
        expected = page.locator("[data-chart]").count()
        assert expected >= 1, kind
        expect(page.locator(".js-plotly-plot")).to_have_count(expected)
        expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible()
        if kind == "baseline":
            expect(page.locator("th", has_text="Fleiss' kappa")).to_be_visible()
        page.screenshot(path=str(artifacts / f"analytics-{kind}.png"), full_page=True)
        assert console_errors == [], (kind, console_errors)
