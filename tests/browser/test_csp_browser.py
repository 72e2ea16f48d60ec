"""S2 in Chromium: chart pages draw under the Content-Security-Policy with no violation, and
pages without charts really refuse inline styles."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from deployments import scoring
from inspections.services import item_create
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.security, pytest.mark.django_db(transaction=True)]

# Runs before any page script: every CSP violation the page causes is kept for the test.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.effectiveDirective} blocked ${event.blockedURI}`);
});
"""


def _sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/accounts/login/?next=/overview/")
    page.fill("input[name=username]", "lead")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/overview/")


def test_chart_pages_draw_without_csp_violations_and_other_pages_refuse_inline_styles(
    page: Page, live_server, ml_lead, shadow_model, queue, digit_rows, figure
):
    items = [
        item_create(queue=queue, external_id=f"csp-{n}", features=digit_rows[n].tolist())
        for n in range(120)
    ]
    scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=[i.pk for i in items])
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.add_init_script(RECORD_VIOLATIONS)
    _sign_in(page, live_server.url)

    drawn = 0
    for kind in ("drift", "operations"):
        page.goto(f"{live_server.url}/overview/digits/{kind}/?model={shadow_model.key}")
        charts = page.locator("[data-chart]").count()
        assert charts >= 1, kind
        expect(page.locator(".js-plotly-plot .main-svg").first).to_be_visible()
        expect(page.locator(".js-plotly-plot")).to_have_count(charts)
        drawn += charts
        assert page.evaluate("window.cspViolations") == [], kind
    assert console_errors == []
    figure("plotly charts drawn under the policy", drawn)

    # The listener works and the strict policy holds where no chart needs inline styles.
    page.goto(f"{live_server.url}/rollout/")
    page.evaluate(
        "document.head.appendChild(Object.assign(document.createElement('style'),"
        " {textContent: 'body { background: red }'}))"
    )
    page.wait_for_function("window.cspViolations.length > 0")
    assert page.evaluate("window.cspViolations") == ["style-src-elem blocked inline"]
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
