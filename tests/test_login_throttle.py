"""Sign-in throttling: five failures lock a username out from an address; audited; admins unlock."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from axes.handlers.proxy import AxesProxyHandler
from axes.utils import reset
from django.contrib.auth.models import User
from django.test import Client, override_settings

from deployments.models import AuditEvent
from shadowlab.login_throttle import LOCKOUT, UNLOCK
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.security]

DATABASE = "axes.handlers.database.AxesDatabaseHandler"
CACHE = "shadowlab.login_throttle.ResilientCacheHandler"
# Documentation addresses (RFC 5737): the suite's other sign-ins come from 127.0.0.1.
ATTACKER, COLLEAGUE = "203.0.113.7", "198.51.100.9"
USERNAMES = ("inspector1", "inspector2", "boss", "nobody-by-that-name")
PAGES = {"product": "/accounts/login/", "admin": "/admin/login/"}


def _clear() -> None:
    for address in (ATTACKER, COLLEAGUE):
        for username in USERNAMES:
            reset(ip=address, username=username)


@pytest.fixture(params=[DATABASE, CACHE], ids=["database", "cache"])
def handler(request):
    """Run the test with each way of counting failures the settings choose from."""
    with override_settings(AXES_HANDLER=request.param):
        _clear()
        yield request.param
        _clear()  # the Redis cache outlives the test database
    AxesProxyHandler.get_implementation(force=True)


def _sign_in(login_page: str, username: str, password: str, address: str) -> int:
    response = Client(REMOTE_ADDR=address).post(
        PAGES[login_page], {"username": username, "password": password, "next": "/"}
    )
    return response.status_code


@pytest.mark.parametrize("login_page", PAGES)
def test_five_failures_lock_the_username_out_from_that_address_even_with_the_right_password(
    handler, login_page, inspector, admin_user, figure
):
    username = "boss" if login_page == "admin" else "inspector1"

    # The attack the issue describes: twenty wrong passwords, then the right one.
    answers = [_sign_in(login_page, username, "wrong", ATTACKER) for _ in range(20)]
    right = _sign_in(login_page, username, PASSWORD, ATTACKER)

    # The fifth failure already answers with the lockout; the right password no longer helps.
    assert answers == [200] * 4 + [429] * 16
    assert right == 429
    counted = answers.index(429) + 1
    figure(f"failed {login_page} sign-ins up to the lockout ({handler.rsplit('.', 1)[1]})", counted)


def test_the_lockout_page_says_why_and_for_how_long(handler, inspector):
    client = Client(REMOTE_ADDR=ATTACKER)
    for _ in range(4):
        client.post("/accounts/login/", {"username": "inspector1", "password": "wrong"})

    response = client.post("/accounts/login/", {"username": "inspector1", "password": "wrong"})

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    text = response.content.decode()
    assert "5 failed sign-ins in a row as <strong>inspector1</strong>" in text
    assert "Try again in 15 minutes" in text


def test_the_lockout_holds_only_that_username_from_that_address(handler, inspector, inspector2):
    for _ in range(5):
        _sign_in("product", "inspector1", "wrong", ATTACKER)

    assert _sign_in("product", "inspector1", PASSWORD, COLLEAGUE) == 302
    assert _sign_in("product", "inspector2", PASSWORD, ATTACKER) == 302
    assert _sign_in("product", "inspector1", PASSWORD, ATTACKER) == 429


def test_a_successful_sign_in_starts_the_count_again(handler, inspector):
    for _ in range(4):
        _sign_in("product", "inspector1", "wrong", ATTACKER)
    assert _sign_in("product", "inspector1", PASSWORD, ATTACKER) == 302

    assert [_sign_in("product", "inspector1", "wrong", ATTACKER) for _ in range(4)] == [200] * 4


def test_the_lockout_ends_after_the_cool_off(handler, inspector, settings):
    # Seconds enough that the sign-in right after the fifth failure still falls inside the
    # lockout on a loaded machine.
    settings.AXES_COOLOFF_TIME = timedelta(seconds=4)
    for _ in range(5):
        _sign_in("product", "inspector1", "wrong", ATTACKER)
    assert _sign_in("product", "inspector1", PASSWORD, ATTACKER) == 429

    time.sleep(4.5)  # a refused attempt during the lockout started the cool-off again

    assert _sign_in("product", "inspector1", PASSWORD, ATTACKER) == 302


def test_a_lockout_is_audited_once_with_the_username_and_address(handler, inspector, figure):
    for _ in range(9):
        _sign_in("product", "inspector1", "wrong", ATTACKER)
    for _ in range(5):
        _sign_in("product", "nobody-by-that-name", "wrong", ATTACKER)

    events = list(AuditEvent.objects.filter(action=LOCKOUT).order_by("id"))
    assert [(e.subject, e.subject_id) for e in events] == [
        ("inspector1", str(inspector.pk)),
        ("nobody-by-that-name", "None"),
    ]
    assert events[0].after == {
        "username": "inspector1",
        "ip_address": ATTACKER,
        "failures": 5,
        "cool_off_minutes": 15.0,
    }
    assert events[0].actor is None and events[0].actor_name == "system"
    once = sum(e.subject == "inspector1" for e in events)
    figure("lockout audit events after 9 failed sign-ins of one username", once)


def test_an_admin_lifts_a_lockout_from_the_user_list(handler, client_for, admin_user, inspector):
    for address in (ATTACKER, COLLEAGUE):
        for _ in range(5):
            _sign_in("product", "inspector1", "wrong", address)
    assert _sign_in("product", "inspector1", PASSWORD, ATTACKER) == 429

    response = client_for(admin_user).post(
        "/admin/auth/user/", {"action": "sign_in_unlock", "_selected_action": [inspector.pk]}
    )

    assert response.status_code == 302
    for address in (ATTACKER, COLLEAGUE):
        assert _sign_in("product", "inspector1", PASSWORD, address) == 302
    event = AuditEvent.objects.get(action=UNLOCK)
    assert (event.actor, event.subject_id) == (admin_user, str(inspector.pk))
    assert event.before == {"locked_out_from": sorted([ATTACKER, COLLEAGUE])}


def test_only_users_who_may_change_users_can_lift_a_lockout(
    handler, client_for, ml_lead, inspector
):
    for _ in range(5):
        _sign_in("product", "inspector1", "wrong", ATTACKER)

    response = client_for(ml_lead).post(
        "/admin/auth/user/", {"action": "sign_in_unlock", "_selected_action": [inspector.pk]}
    )

    assert response.status_code == 403
    assert _sign_in("product", "inspector1", PASSWORD, ATTACKER) == 429
    assert not AuditEvent.objects.filter(action=UNLOCK).exists()


def test_sign_in_still_works_while_the_cache_is_down(inspector):
    dead = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # the discard port: nothing answers there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    try:
        with override_settings(CACHES=dead, AXES_HANDLER=CACHE):
            AxesProxyHandler.get_implementation(force=True)
            assert _sign_in("product", "inspector1", "wrong", ATTACKER) == 200
            assert _sign_in("product", "inspector1", PASSWORD, ATTACKER) == 302
    finally:
        AxesProxyHandler.get_implementation(force=True)
    assert User.objects.get(pk=inspector.pk).last_login is not None
