"""API tokens: expiry, revocation, the 401 that says why, last-used time, the audit trail."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deployments.models import AuditEvent
from inspections.api_tokens import (
    API_TOKEN_MAX_DAYS,
    ApiTokenRefused,
    api_token_authenticate,
    api_token_create,
    api_token_revoke,
)
from inspections.models import ApiToken, Item

pytestmark = [pytest.mark.django_db, pytest.mark.security]

FEATURES = [0.0] * 64


def _submit(raw: str, external_id: str = "x"):
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}").post(
        "/api/v1/queues/digits/items",
        {"external_id": external_id, "features": FEATURES},
        content_type="application/json",
    )


def _expire(token: ApiToken, *, ago: timedelta = timedelta(seconds=1)) -> None:
    """Move the token's life into the past, as the clock would have."""
    now = timezone.now()
    ApiToken.objects.filter(pk=token.pk).update(
        created_at=now - timedelta(days=30), expires_at=now - ago
    )


def _about(lifetime: timedelta):
    return pytest.approx(lifetime, abs=timedelta(seconds=1))


# Issuing


def test_a_new_token_expires_after_the_default_lifetime_from_the_setting(queue, settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "API_TOKEN_DAYS": 30}
    before = timezone.now()
    token, _ = api_token_create(queue=queue, name="scanner")
    assert token.expires_at is not None
    assert before + timedelta(days=30) <= token.expires_at <= timezone.now() + timedelta(days=30)


def test_a_token_issued_for_some_days_expires_after_those_days(queue):
    token, _ = api_token_create(queue=queue, days=7)
    assert token.expires_at - token.created_at == _about(timedelta(days=7))


def test_a_token_issued_without_expiry_never_expires(queue, admin_user):
    token, raw = api_token_create(queue=queue, created_by=admin_user, never_expires=True)
    assert token.expires_at is None
    assert token.state(timezone.now() + timedelta(days=100 * 365)) == ApiToken.State.ACTIVE
    assert _submit(raw).status_code == 201


@pytest.mark.parametrize(
    ("days", "never_expires"),
    [(0, False), (-1, False), (API_TOKEN_MAX_DAYS + 1, False), (30, True), (True, False)],
)
def test_a_lifetime_out_of_range_is_refused_and_nothing_is_stored(queue, days, never_expires):
    with pytest.raises(ValueError, match=r"days|not both"):
        api_token_create(queue=queue, days=days, never_expires=never_expires)
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.exists()


def test_issuing_a_token_is_audited_with_its_expiry_and_never_its_secret(queue, admin_user):
    token, raw = api_token_create(queue=queue, name="scanner 3", created_by=admin_user, days=10)

    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.queue) == ("api_token.issue", admin_user, queue)
    assert event.subject_id == str(token.pk)
    assert event.before is None  # nothing existed before
    assert event.after["prefix"] == token.prefix
    assert event.after["name"] == "scanner 3"
    assert event.after["state"] == "active"
    assert event.after["expires_at"] == token.expires_at.isoformat(timespec="seconds")
    stored = json.dumps([event.after, event.subject, event.evidence])
    assert raw not in stored and token.token_hash not in stored
    assert raw[10:20] not in stored  # not even a piece of the secret past its prefix


def test_someone_who_may_not_issue_tokens_is_refused(queue, ml_lead):
    with pytest.raises(PermissionDenied):
        api_token_create(queue=queue, created_by=ml_lead)
    assert not ApiToken.objects.exists()


# Refused tokens: 401, saying which refusal


def test_a_revoked_token_is_refused_with_401_on_the_very_next_request(queue, admin_user):
    token, raw = api_token_create(queue=queue, name="scanner")
    assert _submit(raw, "before").status_code == 201

    api_token_revoke(token=token, actor=admin_user)
    submitted = _submit(raw, "after")
    read = Client(HTTP_AUTHORIZATION=f"Bearer {raw}").get(f"/api/v1/items/{Item.objects.get().pk}")

    for response in (submitted, read):
        assert response.status_code == 401
        assert response.json()["detail"].startswith("token revoked: ")
        assert token.prefix in response.json()["detail"]
        assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert list(Item.objects.values_list("external_id", flat=True)) == ["before"]


def test_an_expired_token_is_refused_with_401_token_expired(queue):
    token, raw = api_token_create(queue=queue, days=1)
    _expire(token)
    response = _submit(raw)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("token expired: ")
    assert not Item.objects.exists()


def test_a_token_is_refused_from_the_second_it_expires(queue):
    token, raw = api_token_create(queue=queue, days=1)
    _expire(token, ago=timedelta(0))
    with pytest.raises(ApiTokenRefused) as refused:
        api_token_authenticate(raw)
    assert refused.value.reason == ApiTokenRefused.EXPIRED


@pytest.mark.parametrize("raw", ["slk_not-a-token", "x", "slk_" + "a" * 300])
def test_an_unknown_token_is_refused_with_401_invalid_token(queue, raw):
    api_token_create(queue=queue)
    response = _submit(raw)
    assert response.status_code == 401
    assert response.json()["detail"].startswith("invalid token: ")
    assert not Item.objects.exists()


def test_a_revoked_token_that_also_expired_says_revoked(queue, admin_user):
    token, raw = api_token_create(queue=queue)
    api_token_revoke(token=token, actor=admin_user)
    ApiToken.objects.filter(pk=token.pk).update(
        created_at=timezone.now() - timedelta(days=9), expires_at=timezone.now()
    )
    assert _submit(raw).json()["detail"].startswith("token revoked: ")


# Revoking


def test_revoking_records_who_and_when_and_is_audited_with_before_and_after(queue, admin_user):
    token, _ = api_token_create(queue=queue, name="scanner")
    AuditEvent.objects.all().delete()

    revoked = api_token_revoke(token=token, actor=admin_user)

    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == admin_user
    assert revoked.state(timezone.now()) == ApiToken.State.REVOKED
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.queue) == ("api_token.revoke", admin_user, queue)
    assert event.before["state"] == "active" and event.before["revoked_at"] is None
    assert event.after["state"] == "revoked"
    assert event.after["revoked_by"] == admin_user.username
    assert event.after["revoked_at"] == token.revoked_at.isoformat(timespec="seconds")


def test_revoking_a_revoked_token_changes_and_records_nothing(queue, admin_user):
    token, _ = api_token_create(queue=queue)
    first = api_token_revoke(token=token, actor=admin_user)
    events = AuditEvent.objects.count()

    again = api_token_revoke(token=token, actor=admin_user)

    assert again.revoked_at == first.revoked_at
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("role", ["ml_lead", "inspector", "outsider"])
def test_only_admins_may_revoke_a_token(request, queue, role):
    token, raw = api_token_create(queue=queue)
    with pytest.raises(PermissionDenied):
        api_token_revoke(token=token, actor=request.getfixturevalue(role))
    token.refresh_from_db()
    assert token.revoked_at is None
    assert _submit(raw).status_code == 201


def test_a_token_revoked_by_someone_later_deleted_stays_revoked(queue, admin_user):
    token, raw = api_token_create(queue=queue)
    api_token_revoke(token=token, actor=admin_user)
    admin_user.delete()
    token.refresh_from_db()
    assert token.revoked_by is None and token.revoked_at is not None
    assert _submit(raw).status_code == 401


# Last used: at most one write a minute


def test_authenticating_within_the_minute_reads_one_row_and_writes_nothing(queue, figure):
    raw = api_token_create(queue=queue)[1]
    api_token_authenticate(raw)  # the first use is written

    with CaptureQueriesContext(connection) as queries:
        for _ in range(20):
            api_token_authenticate(raw)

    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert statements == ["SELECT"] * 20
    figure("queries per authenticated request within the minute", len(statements) / 20)


def test_the_use_after_a_minute_is_written_by_one_conditional_update(queue):
    token, raw = api_token_create(queue=queue)
    earlier = timezone.now() - timedelta(minutes=2)
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=earlier)

    with CaptureQueriesContext(connection) as queries:
        api_token_authenticate(raw)

    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1
    assert "last_used_at" in updates[0].split("WHERE", 1)[1]
    token.refresh_from_db()
    assert token.last_used_at > earlier + timedelta(minutes=1)


# The command


def _command(**options) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_api_token", stdout=out, stderr=err, **options)
    return out.getvalue().strip(), err.getvalue()


def test_the_command_issues_a_token_for_the_days_asked(queue):
    raw, err = _command(queue="digits", days=7)
    token = api_token_authenticate(raw)
    assert token.expires_at - token.created_at == _about(timedelta(days=7))
    assert f"expires {token.expires_at:%Y-%m-%d}" in err


def test_the_command_says_when_the_default_lifetime_applies(queue, settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "API_TOKEN_DAYS": 45}
    raw, err = _command(queue="digits")
    token = api_token_authenticate(raw)
    assert token.expires_at - token.created_at == _about(timedelta(days=45))
    assert "the default 45 days" in err


def test_the_command_issues_a_token_that_never_expires_when_asked(queue):
    raw, err = _command(queue="digits", no_expiry=True)
    assert api_token_authenticate(raw).expires_at is None
    assert "never expires" in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"days": 0}, "whole number of days"),
        ({"days": 7, "no_expiry": True}, "not both"),
        ({"user": "nobody"}, "no user called 'nobody'"),
        ({"user": "lead"}, "admin role"),
    ],
)
def test_the_command_refuses_a_bad_choice_and_stores_nothing(queue, ml_lead, options, message):
    with pytest.raises(CommandError, match=message):
        _command(queue="digits", **options)
    assert not ApiToken.objects.exists()


def test_the_command_audits_the_issue_under_the_user_named(queue, admin_user):
    raw, _ = _command(queue="digits", user=admin_user.username)
    event = AuditEvent.objects.get(action="api_token.issue")
    assert event.actor == admin_user
    assert api_token_authenticate(raw).created_by == admin_user


# The migration that gave existing tokens an expiry


def test_tokens_issued_before_expiry_existed_get_created_at_plus_the_default_lifetime(
    queue, settings
):
    from django.apps import apps

    migration = importlib.import_module("inspections.migrations.0007_api_token_expiry_revocation")
    settings.SHADOWLAB = {**settings.SHADOWLAB, "API_TOKEN_DAYS": 90}
    now = timezone.now()
    recent, old = (api_token_create(queue=queue)[0] for _ in range(2))
    chosen = api_token_create(queue=queue, days=5)[0]
    ApiToken.objects.filter(pk=recent.pk).update(
        created_at=now - timedelta(days=10), expires_at=None
    )
    ApiToken.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=400), expires_at=None)

    migration.existing_tokens_expire(apps, None)

    recent.refresh_from_db()
    old.refresh_from_db()
    assert recent.expires_at == recent.created_at + timedelta(days=90)
    # Already past its lifetime: a grace period from the upgrade instead of failing at once.
    assert old.expires_at == pytest.approx(now + migration.GRACE, abs=timedelta(minutes=1))
    assert ApiToken.objects.get(pk=chosen.pk).expires_at == chosen.expires_at
    assert not ApiToken.objects.filter(expires_at=None).exists()
