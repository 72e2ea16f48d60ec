"""The admins' API tokens page: list by queue, issue (secret shown once), revoke with a confirm."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from deployments.models import AuditEvent
from inspections.api_tokens import TOKENS_PAGE_SIZE, api_token_create, api_token_revoke
from inspections.models import ApiToken

pytestmark = [pytest.mark.django_db, pytest.mark.security]

PAGE = "/tokens/"


def _issue(client: Client, **fields) -> object:
    return client.post(PAGE, {"expiry": "days", "days": "30", **fields})


def _api(raw: str):
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post(
        "/api/v1/queues/digits/items",
        {"external_id": "x", "features": [0.0] * 64},
        content_type="application/json",
    )


def test_the_page_lists_each_queues_tokens_with_their_state(
    client_for, admin_user, queue, other_queue
):
    active, _ = api_token_create(queue=queue, name="scanner-active", created_by=admin_user)
    revoked, _ = api_token_create(queue=queue, name="scanner-revoked")
    api_token_revoke(token=revoked, actor=admin_user)
    expired, _ = api_token_create(queue=other_queue, name="parts-expired", days=1)
    ApiToken.objects.filter(pk=expired.pk).update(
        created_at=timezone.now() - timedelta(days=3), expires_at=timezone.now()
    )

    html = client_for(admin_user).get(PAGE).content.decode()

    digits_at, parts_at = html.index("<h3>Digits"), html.index("<h3>Parts")
    assert digits_at < html.index("scanner-active") < parts_at < html.index("parts-expired")
    for token in (active, revoked, expired):
        assert f"{token.prefix}…" in html
        assert token.token_hash not in html
    assert "revoked" in html and "expired" in html and "active" in html
    assert f"by {admin_user.username}" in html
    assert html.count("Revoke…") == 2  # active and expired; the revoked one has no button


def test_issuing_shows_the_secret_once_with_its_expiry_and_it_works(
    client_for, admin_user, queue, figure
):
    client = client_for(admin_user)

    response = _issue(client, queue=queue.pk, name="line 4 scanner", days="14")

    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    token = ApiToken.objects.get()
    html = response.content.decode()
    raw = html.split('id="new-token-secret">', 1)[1].split("<", 1)[0]
    assert raw.startswith(token.prefix)
    assert f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC" in html
    assert token.expires_at - token.created_at == pytest.approx(
        timedelta(days=14), abs=timedelta(seconds=1)
    )
    assert token.created_by == admin_user
    assert _api(raw).status_code == 201
    # Shown once: the list afterwards, and the audit log, carry only the prefix.
    again = client.get(PAGE).content.decode()
    assert raw not in again and token.prefix in again
    event = AuditEvent.objects.get(action="api_token.issue")
    assert event.actor == admin_user and raw not in str(event.after)
    figure("times the secret is shown", int(raw in html) + int(raw in again))


def test_issuing_a_token_that_never_expires_is_an_explicit_choice(client_for, admin_user, queue):
    response = client_for(admin_user).post(
        PAGE, {"queue": queue.pk, "name": "archive", "expiry": "never", "days": "30"}
    )
    assert response.status_code == 201
    assert "never expires" in response.content.decode()
    assert ApiToken.objects.get().expires_at is None


def test_the_lifetime_offered_is_the_default_from_the_setting(client_for, admin_user, settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "API_TOKEN_DAYS": 45}
    html = client_for(admin_user).get(PAGE).content.decode()
    assert 'name="days" value="45"' in html


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"days": "0"}, "greater than or equal to 1"),
        ({"days": "99999"}, "less than or equal to 3650"),
        ({"days": "abc"}, "Enter a whole number"),
        ({"days": ""}, "Give the number of days"),
        ({"name": ""}, "This field is required"),
        ({"name": "x" * 101}, "at most 100 characters"),
        ({"queue": "987654"}, "Select a valid choice"),
        ({"expiry": "sometimes"}, "Select a valid choice"),
    ],
)
def test_a_bad_issue_form_is_400_saying_why_and_issues_nothing(
    client_for, admin_user, queue, fields, message
):
    response = _issue(client_for(admin_user), **{"queue": queue.pk, "name": "n", **fields})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.exists()


def test_revoking_asks_to_confirm_then_refuses_the_token_at_once(client_for, admin_user, queue):
    token, raw = api_token_create(queue=queue, name="scanner")
    client = client_for(admin_user)
    url = f"/tokens/{token.pk}/revoke"

    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "Revoke this token" in confirm.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is None  # looking at the confirm page changes nothing
    assert _api(raw).status_code == 201

    done = client.post(url)

    assert done.status_code == 302
    assert done["Location"] == "/tokens/?queue=digits"
    token.refresh_from_db()
    assert token.revoked_by == admin_user
    refused = _api(raw)
    assert refused.status_code == 401
    assert refused.json()["detail"].startswith("token revoked")
    assert AuditEvent.objects.filter(action="api_token.revoke", actor=admin_user).count() == 1
    listed = client.get(done["Location"]).content.decode()
    assert "is revoked" in listed and f"by {admin_user.username}" in listed


def test_revoking_twice_is_harmless(client_for, admin_user, queue):
    token, _ = api_token_create(queue=queue)
    client = client_for(admin_user)
    client.post(f"/tokens/{token.pk}/revoke")
    again = client.post(f"/tokens/{token.pk}/revoke", follow=True)
    assert "already revoked" in again.content.decode()
    assert AuditEvent.objects.filter(action="api_token.revoke").count() == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("queue=nowhere", "there is no queue"),
        # Refused before the view: no parameter anywhere accepts a NUL character.
        ("queue=%00", "holds a NUL character"),
        ("page=abc", "page must be a whole number"),
        ("page=0", "page must be between 1 and"),
        ("page=999999999999999999999", "page must be between 1 and"),
    ],
)
def test_a_bad_filter_is_400_saying_why(client_for, admin_user, queue, query, message):
    response = client_for(admin_user).get(f"{PAGE}?{query}")
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_list_is_paged_and_filtered_by_queue(client_for, admin_user, queue, other_queue):
    for n in range(TOKENS_PAGE_SIZE + 5):
        api_token_create(queue=queue, name=f"digits-{n}")
    api_token_create(queue=other_queue, name="parts-only")
    client = client_for(admin_user)

    first = client.get(PAGE).content.decode()
    assert first.count("Revoke…") == TOKENS_PAGE_SIZE
    assert "Page 1 of 2" in first
    filtered = client.get(f"{PAGE}?queue=parts").content.decode()
    assert "parts-only" in filtered and "digits-0" not in filtered


def test_the_tokens_entry_is_in_the_navigation_of_admins_only(
    client_for, inspector, ml_lead, admin_user, queue
):
    assert 'href="/tokens/"' in client_for(admin_user).get("/overview/").content.decode()
    assert 'href="/tokens/"' not in client_for(ml_lead).get("/overview/").content.decode()
    assert 'href="/tokens/"' not in client_for(inspector).get("/inspect/").content.decode()


def test_the_django_admin_lists_tokens_read_only(client_for, admin_user, queue):
    token, _ = api_token_create(queue=queue, name="scanner")
    client = client_for(admin_user)
    listing = client.get("/admin/inspections/apitoken/")
    assert listing.status_code == 200
    assert token.prefix in listing.content.decode()
    assert client.get("/admin/inspections/apitoken/add/").status_code == 403
    assert client.post(f"/admin/inspections/apitoken/{token.pk}/delete/").status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()
