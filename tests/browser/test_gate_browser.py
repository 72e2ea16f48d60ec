"""An ml_lead opens a model version's gate in a real browser, evaluates it and reads the table."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from analytics import services
from analytics.models import GateEvaluation
from tests.analytics.gate_data import gate_data_build, gate_data_populate
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GATE = "/rollout/parts-gate/gate/m:1/"
POLICY = "/rollout/digits/policy/"


def test_an_ml_lead_evaluates_the_gate_and_sees_every_criterion(
    page: Page, live_server, ml_lead, artifacts
):
    data = gate_data_build()
    today = services.utc_today()
    gate_data_populate(data, seed=3, n=160, days=[today - timedelta(days=1), today])
    services.rollups_refresh(today=today)
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.set_viewport_size({"width": 1366, "height": 860})

    page.goto(f"{live_server.url}/accounts/login/?next={GATE}")
    page.fill("#id_username", "lead")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == GATE)
    expect(page.get_by_text("m:1 has not been evaluated yet.")).to_be_visible()
    expect(page.locator("a", has_text="Rollout")).to_have_attribute("href", "/rollout/")

    page.get_by_role("button", name="Evaluate now").click()

    page.wait_for_url(lambda url: urlsplit(url).path == GATE)
    rows = page.locator("table.criteria tbody tr")
    expect(rows).to_have_count(9)
    expect(page.locator(".messages li.success")).to_contain_text("Evaluated m:1:")
    evaluation = GateEvaluation.objects.get()
    assert evaluation.evaluated_by == ml_lead
    # One prediction in twenty failed in this data: the gate fails on the error rate.
    assert evaluation.verdict == "fail"
    expect(page.locator(".verdict-card .headline")).to_contain_text("Fails the gate on")
    expect(page.locator(".verdict-card .headline")).to_contain_text("error rate")
    expect(page.locator('tr[data-criterion="error_rate"] .light.bad')).to_be_visible()
    expect(page.locator('tr[data-criterion="int8_parity"] .light.off')).to_be_visible()
    expect(page.locator(".gate-needs .needs")).to_contain_text("more judged items")
    expect(page.locator(".promotion .refusal")).to_contain_text("does not pass the gate")
    # Nothing wider than the window: the criteria table scrolls inside its card if it must.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(artifacts / "gate-light.png"), full_page=True)

    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(rows).to_have_count(9)
    page.screenshot(path=str(artifacts / "gate-dark.png"), full_page=True)

    for path, name in (
        (f"/models/{data.fp32.key}/", "model-version"),
        ("/rollout/parts-gate/policy/", "gate-policy"),
    ):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("h1")).to_be_visible()
        page.screenshot(path=str(artifacts / f"{name}-dark.png"), full_page=True)
    assert console_errors == []


def test_an_admin_edits_the_gate_policy_and_sees_the_new_version(
    page: Page, live_server, admin_user, queue, artifacts
):
    page.set_viewport_size({"width": 1366, "height": 860})
    page.goto(f"{live_server.url}/accounts/login/?next={POLICY}")
    page.fill("#id_username", "boss")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == POLICY)

    page.fill("#id_agreement_floor", "1.5")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator("#agreement_floor-errors")).to_have_text("1.5 is not in [0, 1]")
    page.screenshot(path=str(artifacts / "gate-policy-error.png"), full_page=True)

    page.fill("#id_agreement_floor", "0.92")
    page.fill("#id_psi_major", "")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.locator(".messages li.success")).to_contain_text("as version 2")
    expect(page.locator(".policy-history")).to_contain_text("psi_major: 0.25 → off")
