"""Four eyes in a real browser: a lead evaluates and requests, another admin approves."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from analytics import services
from analytics.gate.policy import gate_policy_update
from deployments.models import Deployment, PromotionRequest
from deployments.services import deployment_shadow_start
from tests.analytics.gate_data import gate_data_build, gate_data_populate
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GATE = "/rollout/parts-gate/gate/m:1/"
# A lenient policy this small data set can pass on real evidence: what the test is about is
# the workflow around the verdict, not the thresholds.
LENIENT = {
    "min_judged_items": 50,
    "min_per_label": None,
    "noninferiority_margin": None,
    "agreement_floor": 0.5,
    "kappa_floor": None,
    "recall_floor": None,
    "psi_major": None,
    "drifted_share_max": None,
    "max_error_rate": None,
    "latency_p95_budget_ms": None,
    "int8_parity_floor": None,
}


def _login(page: Page, base: str, username: str, next_path: str) -> None:
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")


def _watch(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_a_lead_requests_a_canary_and_another_admin_approves_it(
    browser: Browser, live_server, ml_lead, admin_user, artifacts
):
    data = gate_data_build()
    today = services.utc_today()
    gate_data_populate(data, seed=5, n=200, days=[today - timedelta(days=1), today])
    services.rollups_refresh(today=today)
    deployment_shadow_start(model_version=data.fp32, actor=admin_user)
    gate_policy_update(queue=data.queue, values=LENIENT, actor=admin_user)

    lead = browser.new_context(viewport={"width": 1366, "height": 860}).new_page()
    lead_errors = _watch(lead)
    _login(lead, live_server.url, ml_lead.username, GATE)
    lead.wait_for_url(lambda url: urlsplit(url).path == GATE)
    lead.get_by_role("button", name="Evaluate now").click()
    lead.wait_for_url(lambda url: urlsplit(url).path == GATE)
    expect(lead.locator(".messages li.success")).to_contain_text("Evaluated m:1:")
    expect(lead.locator('tr[data-criterion="agreement_floor"] .light.good')).to_be_visible()

    lead.select_option("select[name=target]", "canary")
    lead.fill("input[name=share]", "0.1")
    lead.fill("textarea[name=note]", "agreement clears the floor")
    lead.get_by_role("button", name="Request promotion").click()
    expect(lead.locator(".messages li.success")).to_contain_text("is pending")
    request = PromotionRequest.objects.get()
    assert request.requested_by == ml_lead and request.status == "pending"

    # The requester may look at the request but not decide it.
    lead.goto(f"{live_server.url}/rollout/promotions/{request.pk}/")
    expect(lead.get_by_text("You filed this request")).to_be_visible()
    expect(lead.get_by_role("button", name="Approve")).to_have_count(0)
    assert lead_errors == []

    boss = browser.new_context(viewport={"width": 1366, "height": 860}).new_page()
    boss_errors = _watch(boss)
    _login(boss, live_server.url, admin_user.username, "/")
    # The admin lands on the rollout, with the request awaiting a decision first.
    boss.wait_for_url(lambda url: urlsplit(url).path == "/rollout/")
    expect(boss.locator("section.pending h2")).to_contain_text("Awaiting a decision (1)")
    boss.screenshot(path=str(artifacts / "rollout-index.png"), full_page=True)
    boss.get_by_role("link", name="Review and decide").click()
    expect(boss.locator('tr[data-criterion="agreement_floor"]')).to_be_visible()
    boss.screenshot(path=str(artifacts / "promotion-decision.png"), full_page=True)
    boss.fill("textarea[name=comment]", "evidence is clear")
    boss.get_by_role("button", name="Approve").click()

    boss.wait_for_url(lambda url: urlsplit(url).path == "/rollout/parts-gate/")
    expect(boss.locator(".messages li.success")).to_contain_text("approved")
    expect(boss.locator("tr.canary")).to_contain_text("m:1")
    expect(boss.locator("tr.canary")).to_contain_text("10% of items")
    boss.screenshot(path=str(artifacts / "rollout-queue.png"), full_page=True)
    assert boss_errors == []

    canary = Deployment.objects.get(queue=data.queue, role="canary")
    assert canary.model_version == data.fp32 and canary.promotion == request
    request.refresh_from_db()
    assert request.status == "approved" and request.decided_by == admin_user
