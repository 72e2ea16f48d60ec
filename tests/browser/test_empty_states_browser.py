"""Empty and degenerate reports in a real browser: sentences, no placeholders, no script errors."""

from __future__ import annotations

from urllib.parse import urlsplit

import numpy as np
import pytest
from playwright.sync_api import Page, expect

from analytics.registry import REPORT_KINDS
from tests.analytics.test_empty_states import _items, _version
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PLACEHOLDERS = ("nan", "NaN", "None", "Infinity", "undefined")


@pytest.mark.parametrize("state", ["no-items", "one-item", "one-label"])
def test_degenerate_reports_read_as_sentences_in_chromium(
    page: Page, live_server, ml_lead, inspector, state, artifacts
):
    from inspections.models import Queue

    parts = Queue.objects.create(name="Parts", slug="parts", labels=["a", "b", "c"], input_width=3)
    version = _version(parts, np.random.default_rng(0).normal(size=(1000, 3)))
    if state == "one-item":
        _items(parts, version, inspector, [([0.1, 0.2, 0.3], "a", "a")])
    elif state == "one-label":
        rows: list[tuple[list[float], str | None, str | None]] = [
            ([0.1 * n, 0.2, 0.3], "b", "b") for n in range(12)
        ]
        _items(parts, version, inspector, rows)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{live_server.url}/accounts/login/?next=/overview/")
    page.fill("#id_username", ml_lead.username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/overview/")
    for kind in REPORT_KINDS:
        page.goto(f"{live_server.url}/overview/parts/{kind}/?model={version.key}")
        expect(page.locator("h1")).to_be_visible()
        text = page.locator("main").inner_text()
        for word in PLACEHOLDERS:
            assert f" {word} " not in f" {' '.join(text.split())} ", (kind, word)
        page.screenshot(path=str(artifacts / f"empty-{state}-{kind}.png"), full_page=True)
    assert errors == []
