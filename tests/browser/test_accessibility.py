"""axe-core in headless Chromium on every page a person works on: no serious or critical
violation of WCAG 2.1 A/AA rules, in light and dark colour schemes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import Page

from analytics.registry import REPORT_KINDS
from deployments.models import ModelVersion
from shadowlab.demo_models import MODEL_NAME, MODEL_VERSION, QUEUE_SLUG
from tests.conftest import PASSWORD

pytestmark = [
    pytest.mark.browser,
    pytest.mark.accessibility,
    pytest.mark.django_db(transaction=True),
]

SERIOUS = {"serious", "critical"}
AXE_OPTIONS = {
    "resultTypes": ["violations"],
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
}


def _pages(key: str) -> dict[str, list[str]]:
    """Return, by demo user, the pages that user works on."""
    reports = [f"/overview/{QUEUE_SLUG}/{kind}/?model={key}" for kind in REPORT_KINDS]
    return {
        "": ["/accounts/login/"],
        "inspector1": ["/inspect/", f"/inspect/{QUEUE_SLUG}/", "/inspect/history/"],
        "lead": [
            "/overview/",
            *reports,
            # The newest disagreement left to adjudicate, as the review page's button opens it.
            f"/overview/{QUEUE_SLUG}/adjudicate/next/?model={key}",
            f"/rollout/{QUEUE_SLUG}/gate/{key}/",
            f"/models/{key}/",
            "/audit/",
        ],
        "admin": [
            "/rollout/",
            f"/rollout/{QUEUE_SLUG}/",
            f"/rollout/{QUEUE_SLUG}/policy/",
            "/models/upload/",
            "/tokens/",
        ],
    }


@pytest.fixture
def sign_in(page: Page, live_server) -> Callable[[str], None]:
    def as_user(username: str) -> None:
        page.context.clear_cookies()
        if not username:
            return
        client = Client()
        client.force_login(User.objects.get(username=username))
        cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [{"name": cookie.key, "value": cookie.value, "url": live_server.url}]
        )

    return as_user


def test_no_page_has_a_serious_or_critical_accessibility_violation(
    page: Page, live_server, sign_in, settings, figure
):
    settings.SHADOWLAB_DEMO_PASSWORD = PASSWORD
    call_command("demo", items=20, history_days=2, verbosity=0)
    key = ModelVersion.objects.get(name=MODEL_NAME, version=MODEL_VERSION).key
    axe = Axe()
    page.set_viewport_size({"width": 1366, "height": 860})
    serious: list[str] = []
    minor: Counter[str] = Counter()
    checked = 0

    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for username, paths in _pages(key).items():
            sign_in(username)
            for path in paths:
                response = page.goto(f"{live_server.url}{path}")
                assert response is not None and response.status == 200, path
                if "adjudicate" in path:
                    assert "/adjudicate/next/" not in page.url, "no disagreement to adjudicate"
                page.wait_for_load_state("networkidle")
                results = axe.run(page, options=AXE_OPTIONS)
                checked += 1
                for violation in results.response["violations"]:
                    nodes = [node["target"] for node in violation["nodes"]]
                    if violation["impact"] in SERIOUS:
                        serious.append(
                            f"{scheme} {path}: {violation['id']} ({violation['impact']}) "
                            f"{violation['help']} at {nodes[:3]}"
                        )
                    else:
                        minor[violation["id"]] += len(nodes)

    figure("pages checked (light and dark)", checked)
    figure("serious or critical violations", len(serious))
    figure("moderate or minor violations by rule", dict(minor))
    assert serious == [], "\n".join(serious)
