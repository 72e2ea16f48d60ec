"""An inspector works the queue in a real browser, by keyboard only, and never sees the model."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect

from deployments import scoring
from deployments.models import Prediction
from inspections.models import Judgment
from inspections.services import item_create
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FORBIDDEN_WORDS = ["confidence", "probabilit", "prediction", "agreement", "kappa"]


def _scored_items(queue, shadow_model, rows, count):
    items = [
        item_create(queue=queue, external_id=f"scan-{n:03d}", features=rows[n].tolist())
        for n in range(count)
    ]
    scoring.predictions_score(model_version_id=shadow_model.pk, item_ids=[i.pk for i in items])
    return items


def _model_traces(text: str, predictions) -> list[str]:
    found = [word for word in FORBIDDEN_WORDS if word in text.lower()]
    for prediction in predictions:
        if prediction.confidence > 0.9999:  # "1.0000" says nothing about the model
            continue
        for shown in (f"{prediction.confidence:.6f}".rstrip("0"), f"{prediction.confidence:.4f}"):
            if shown in text:
                found.append(shown)
    return found


def test_inspector_judges_ten_items_by_keyboard_only(
    page: Page, live_server, inspector, queue, shadow_model, digit_rows, artifacts
):
    _scored_items(queue, shadow_model, digit_rows, 12)
    predictions = list(Prediction.objects.all())
    assert len(predictions) == 12
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))

    page.goto(f"{live_server.url}/accounts/login/?next=/inspect/digits/")
    page.fill("#id_username", "inspector1")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/inspect/digits/")
    page.wait_for_load_state("load")  # the keymap script is deferred until then
    expect(page.locator("#inspect-panel")).to_be_visible()
    expect(page.locator("svg.pixels rect")).to_have_count(64)

    pressed: dict[str, str] = {}
    for n in range(10):
        external_id = page.locator(".item-id code").inner_text()
        key = str((n * 3) % 10)
        page.keyboard.press(key)
        expect(page.locator("#judged-today")).to_have_text(str(n + 1))
        pressed[external_id] = key
        if n == 0:
            page.screenshot(path=str(artifacts / "inspector-after-first.png"))

    page.screenshot(path=str(artifacts / "inspector.png"), full_page=True)
    stored = dict(
        Judgment.objects.filter(inspector=inspector).values_list("item__external_id", "label")
    )
    assert stored == pressed

    # Undo by keyboard puts the last item back on screen.
    last = list(pressed)[-1]
    page.keyboard.press("Backspace")
    expect(page.locator(".item-id code")).to_have_text(last)
    assert Judgment.objects.filter(inspector=inspector).count() == 9

    dom = page.content()
    raw = page.request.get(f"{live_server.url}/inspect/digits/").text()
    history = page.request.get(f"{live_server.url}/inspect/history/").text()
    for text in (dom, raw, history):
        assert _model_traces(text, predictions) == []
        assert "<!--" not in text
    assert re.search(r"<rect [^>]*fill=\"rgb\(", raw)
    assert console_errors == []


@pytest.mark.security
def test_a_refused_key_press_shows_why_and_the_item_to_judge_next(
    page: Page, live_server, inspector, queue, digit_rows
):
    from datetime import timedelta

    from django.utils import timezone

    from inspections.models import Assignment

    for n in range(2):
        item_create(queue=queue, external_id=f"scan-{n:03d}", features=digit_rows[n].tolist())
    page.goto(f"{live_server.url}/accounts/login/?next=/inspect/digits/")
    page.fill("#id_username", "inspector1")
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: urlsplit(url).path == "/inspect/digits/")
    page.wait_for_load_state("load")
    expect(page.locator(".item-id code")).to_have_text("scan-000")

    # The inspector walked away: the reservation ran out while the item stayed on screen.
    Assignment.objects.update(
        shown_at=timezone.now() - timedelta(minutes=11),
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    page.keyboard.press("3")
    expect(page.locator(".notice")).to_contain_text("the time ran out; nothing was recorded")
    expect(page.locator(".item-id code")).to_have_text("scan-000")
    assert not Judgment.objects.exists()

    # Still free, it is reserved afresh: the next key press records it and moves on.
    page.keyboard.press("3")
    expect(page.locator("#judged-today")).to_have_text("1")
    expect(page.locator(".item-id code")).to_have_text("scan-001")
    assert Judgment.objects.get().item.external_id == "scan-000"
