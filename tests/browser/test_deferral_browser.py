"""An admin sets the deferral threshold from the confidence report in a real browser."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from analytics import services
from deployments.models import AuditEvent
from inspections.models import Queue
from tests.analytics.audit_data import audit_data_build, audit_data_populate
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGE = "/overview/parts-deferral/confidence/"


def test_an_admin_uses_a_suggested_threshold_then_a_typed_one(
    page: Page, live_server, admin_user, artifacts
):
    data = audit_data_build(slug="parts-deferral")
    today = services.utc_today()
    audit_data_populate(
        data, seed=31, n=400, days=[today], inspector_accuracy=0.99, model_boost=0.3
    )
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.set_viewport_size({"width": 1366, "height": 900})
    url = f"{PAGE}?model=m:1&since={today}&until={today}"

    page.goto(f"{live_server.url}/accounts/login/?next={url}")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda u: urlsplit(u).path == PAGE)
    expect(page.locator("#deferral-threshold")).to_have_text("0")

    # The first suggestion decides the most items among those that reach their level.
    row = page.locator("table.suggestions tbody tr").filter(has=page.locator("form")).first
    chosen = row.locator("input[name=threshold]").get_attribute("value")
    assert chosen is not None
    row.get_by_role("button", name="Use this threshold").click()

    page.wait_for_url(lambda u: urlsplit(u).path == PAGE)
    shown = f"{float(chosen):g}"
    expect(page.locator("#deferral-threshold")).to_have_text(shown)
    expect(page.locator(".messages li.success")).to_contain_text(
        f"The deferral threshold of Parts is {shown}."
    )
    expect(page.locator(".current-figures")).to_contain_text(
        f"those of confidence {float(chosen):.2f} or more"
    )
    assert Queue.objects.get(pk=data.queue.pk).deferral_threshold == float(chosen)

    # A typed value is previewed from the curve before it is used.
    page.fill("#threshold-free", "0.955")
    expect(page.locator("#threshold-preview")).to_contain_text("At 0.955: the model would decide")
    expect(page.locator("#threshold-preview")).to_contain_text("Read at 0.95")
    page.screenshot(path=str(artifacts / "deferral-threshold.png"), full_page=True)
    page.locator("form.threshold-form").get_by_role("button", name="Use this threshold").click()

    page.wait_for_url(lambda u: urlsplit(u).path == PAGE)
    expect(page.locator("#deferral-threshold")).to_have_text("0.955")
    expect(page.locator(".current-figures")).to_contain_text("Read at 0.95")
    assert list(
        AuditEvent.objects.filter(action="deferral_threshold.set")
        .order_by("id")
        .values_list("after", flat=True)
    ) == [{"deferral_threshold": float(chosen)}, {"deferral_threshold": 0.955}]
    assert console_errors == []
