"""An ml_lead opens the API's Swagger UI in a real browser under the project's CSP."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_swagger_ui_draws_the_operations_from_local_files_without_console_errors(
    page: Page, live_server, ml_lead, artifacts
):
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    origins: set[str] = set()
    page.on("request", lambda r: origins.add(urlsplit(r.url).netloc))

    page.goto(f"{live_server.url}/accounts/login/?next=/api/docs")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/api/docs")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ShadowLab API")
    for path in ("/api/v1/queues/{slug}/items", "/api/v1/queues/{slug}/items:batch"):
        expect(page.locator(f'.opblock-summary-path[data-path="{path}"]')).to_be_visible()
    page.locator(".opblock-summary", has_text="/api/v1/items/{item_id}").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()
    page.screenshot(path=str(artifacts / "api-docs.png"), full_page=True)
    assert console_errors == []
    assert origins == {urlsplit(live_server.url).netloc}
