"""The whole live path in a real browser: shadow, gate, request, approval, canary, live, rollback.

A real digits model is evaluated on judged evidence, promoted by the lead's requests and
another admin's approvals to a 5% canary and then live; intake then routes items to it.
When the images come in inverted the model gets them wrong while inspectors do not, and
the rollback monitor (run here as beat runs it) takes the model off. Every step is checked
on the rollout page, with a screenshot.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from analytics import services
from analytics.gate.policy import gate_policy_update
from deployments.models import AuditEvent, Decision, Deployment
from deployments.monitor import rollout_monitor_run
from deployments.scoring import predictions_score
from deployments.services import deployment_shadow_start
from inspections.models import Item, Queue
from inspections.services import api_token_create, judgment_record
from shadowlab import digits
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROLLOUT = "/rollout/digits/"
GATE = "/rollout/digits/gate/digits-mlp:1/"
# The workflow is what this test is about: a policy this small evidence can pass, two steps,
# and a monitor that may decide on a few dozen audited items.
POLICY = {
    "min_judged_items": 100,
    "min_per_label": None,
    "noninferiority_margin": None,
    "agreement_floor": 0.8,
    "kappa_floor": None,
    "recall_floor": None,
    "psi_major": None,
    "drifted_share_max": None,
    "max_error_rate": None,
    "latency_p95_budget_ms": None,
    "int8_parity_floor": None,
    "canary_steps": [0.05, 1.0],
    "rollback_min_audited": 30,
    "rollback_min_decisions": 30,
    "rollback_latency_p95_ms": None,
}


def _login(page: Page, base: str, username: str, next_path: str) -> None:
    page.goto(f"{base}/accounts/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == next_path)


def _watch(page: Page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _evidence(queue: Queue, model_version, rows: np.ndarray, labels: np.ndarray, who) -> None:
    """Judged items the shadow model scored, as weeks of shadow would leave them."""
    items = Item.objects.bulk_create(
        Item(
            queue=queue,
            external_id=f"shadow-{k}",
            features=[float(v) for v in row],
            received_at=timezone.now(),
        )
        for k, row in enumerate(rows)
    )
    predictions_score(model_version_id=model_version.pk, item_ids=[item.pk for item in items])
    for item, label in zip(items, labels, strict=True):
        judgment_record(item=item, inspector=who, label=str(label), seconds_spent=2.0)


def _request_and_approve(lead: Page, boss: Page, base: str, target_text: str) -> None:
    lead.goto(f"{base}{GATE}")
    lead.get_by_role("button", name="Evaluate now").click()
    expect(lead.locator(".messages li.success")).to_contain_text("Evaluated digits-mlp:1:")
    lead.fill("textarea[name=note]", f"gate passes: {target_text}")
    lead.get_by_role("button", name="Request promotion").click()
    expect(lead.locator(".messages li.success")).to_contain_text("is pending")
    boss.goto(f"{base}/rollout/")
    boss.get_by_role("link", name="Review and decide").first.click()
    boss.fill("textarea[name=comment]", "second pair of eyes")
    boss.get_by_role("button", name="Approve").click()
    boss.wait_for_url(lambda url: urlsplit(url).path == ROLLOUT)
    expect(boss.locator(".messages li.success")).to_contain_text("approved")


def _submit(client: Client, token: str, rows: np.ndarray, prefix: str) -> list[dict]:
    body = {
        "items": [
            {"external_id": f"{prefix}-{k}", "features": [float(v) for v in row]}
            for k, row in enumerate(rows)
        ]
    }
    response = client.post(
        "/api/v1/queues/digits/items:batch",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_a_model_goes_from_shadow_to_live_and_is_rolled_back_when_it_degrades(
    browser: Browser,
    live_server,
    queue,
    model_version,
    digits_split,
    inspector,
    ml_lead,
    admin_user,
    artifacts,
):
    base = live_server.url
    split = digits_split
    deployment_shadow_start(model_version=model_version, actor=admin_user)
    gate_policy_update(queue=queue, values=POLICY, actor=admin_user)
    queue.audit_rate = 0.5
    queue.save(update_fields=["audit_rate"])
    _evidence(queue, model_version, split.holdout_x[:200], split.holdout_y[:200], inspector)
    services.rollups_refresh(today=services.utc_today())

    lead = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    boss = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    errors = _watch(lead) + _watch(boss)
    _login(lead, base, ml_lead.username, GATE)
    _login(boss, base, admin_user.username, "/rollout/")

    # Shadow: on the rollout page, deciding nothing.
    boss.goto(f"{base}{ROLLOUT}")
    expect(boss.locator(".canary-ladder")).to_contain_text("No canary")
    boss.screenshot(path=str(artifacts / "live-path-1-shadow.png"), full_page=True)

    # Gate, request, approval: a canary deciding 5% of the items.
    _request_and_approve(lead, boss, base, "canary 5%")
    expect(boss.locator("tr.canary")).to_contain_text("digits-mlp:1")
    expect(boss.locator(".canary-ladder li[aria-current=step]")).to_contain_text("5%")
    boss.screenshot(path=str(artifacts / "live-path-2-canary.png"), full_page=True)

    token = api_token_create(queue=queue, name="line")[1]
    client = Client()
    results = _submit(client, token, split.holdout_x[200:500], "canary")
    model_routed = [r for r in results if r["route"] == "model"]
    # 5% of 300: a binomial count this far out happens with probability below 1e-6.
    assert 1 <= len(model_routed) <= 50, len(model_routed)
    assert all(r["decision"]["model"] == "digits-mlp:1" for r in model_routed)

    # The last step, through the health check: live, every item the model's.
    _request_and_approve(lead, boss, base, "live")
    expect(boss.locator("tr.live")).to_contain_text("digits-mlp:1")
    boss.screenshot(path=str(artifacts / "live-path-3-live.png"), full_page=True)
    healthy = _submit(client, token, split.holdout_x[500:560], "live")
    assert {r["route"] for r in healthy} == {"model"}

    # Forced degradation: inverted images; inspectors still read them, the model does not
    # (it never saw an inverted digit, so its training rows serve as well as held-out ones).
    inverted = digits.PIXEL_MAX - split.train_x[:200]
    degraded = _submit(client, token, inverted, "inverted")
    truth = dict(
        zip((f"inverted-{k}" for k in range(len(inverted))), split.train_y[:200], strict=True)
    )
    audited = Item.objects.filter(queue=queue, audit_sample=True, human_status="pending")
    for item in audited:
        label = truth.get(item.external_id)
        if label is not None:
            judgment_record(item=item, inspector=inspector, label=str(label), seconds_spent=2.0)
    assert {r["route"] for r in degraded} == {"model"}

    boss.goto(f"{base}{ROLLOUT}")
    expect(boss.locator("tr.live")).to_contain_text("digits-mlp:1")
    looks = rollout_monitor_run()  # what beat runs every minute
    assert looks
    live = Deployment.objects.get(queue=queue, model_version=model_version)
    assert live.role == Deployment.Role.SHADOW
    assert AuditEvent.objects.filter(
        action="deployment.rollback", actor__isnull=True, evidence__startswith="monitor-check:"
    ).exists()

    boss.goto(f"{base}{ROLLOUT}")
    expect(boss.locator(".blue-green")).to_contain_text("No live model")
    expect(boss.locator(".last-rollback")).to_contain_text("digits-mlp:1")
    boss.screenshot(path=str(artifacts / "live-path-4-rolled-back.png"), full_page=True)

    # After the rollback inspectors decide again; the decisions made stay on record.
    after = _submit(client, token, split.holdout_x[560:580], "after")
    assert {r["route"] for r in after} == {"human"}
    assert Decision.objects.filter(model_version=model_version, outcome="decided").count() > 100
    assert errors == []
