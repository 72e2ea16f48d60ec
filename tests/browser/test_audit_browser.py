"""An ML lead reads the audit log in a real browser: filters, the CSV link, no CSP errors."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from deployments.promotions import promotion_approve, promotion_request_create
from deployments.rollout import kill_switch_set
from tests.conftest import PASSWORD
from tests.deployments.rollout_factories import deployment_make, evaluation_make, version_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_lead_filters_the_audit_log_and_downloads_it(
    page: Page, live_server, ml_lead, admin_user, queue, other_queue, artifacts
):
    version = version_make(queue, "2")
    deployment_make(version, "shadow")
    request = promotion_request_create(
        queue=queue,
        model_version=version,
        target="canary",
        share=0.05,
        evaluation=evaluation_make(version),
        actor=ml_lead,
        note="two weeks above the inspectors",
    )
    promotion_approve(request=request, actor=admin_user, comment="agreed")
    kill_switch_set(queue=other_queue, on=True, actor=admin_user)
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))

    page.goto(f"{live_server.url}/accounts/login/?next=/audit/")
    page.fill("#id_username", ml_lead.username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/audit/")
    expect(page.locator("table.audit tbody tr")).to_have_count(4)
    expect(page.locator("nav a", has_text="Audit log")).to_be_visible()
    page.screenshot(path=str(artifacts / "audit.png"), full_page=True)

    page.select_option("select[name=action]", "promotion.approve")
    page.click("button.primary")
    expect(page.locator("table.audit tbody tr")).to_have_count(1)
    expect(page.locator("table.audit tbody")).to_contain_text("boss")
    expect(page.locator("table.audit tbody")).to_contain_text(
        f"gate-evaluation:{request.evaluation_id}"
    )

    with page.expect_download() as download:
        page.click("text=CSV of these events")
    lines = download.value.path().read_text().splitlines()
    assert lines[0].startswith("time,actor,action")
    assert len(lines) == 2 and "promotion.approve" in lines[1]

    assert console_errors == []

    # A bad filter is a 400 page that says what is wrong.
    page.goto(f"{live_server.url}/audit/?since=tomorrow")
    expect(page.locator("p.error")).to_contain_text("since must be a date")
