"""S2: every page carries the security headers, and production cookies are locked down.

The production values are read from settings loaded the way docker-compose loads them
(DJANGO_DEBUG=false, in a child process), then applied here, and pages are requested as
they arrive behind the TLS proxy (secure).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from django.test import Client

from analytics.registry import REPORT_KINDS
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.security, pytest.mark.django_db]

ROOT = Path(__file__).resolve().parent.parent
SECURITY_SETTINGS = (
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SECURE_CONTENT_TYPE_NOSNIFF",
    "SECURE_REFERRER_POLICY",
    "X_FRAME_OPTIONS",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
)
# Referrer policies that never send a path to another site.
STRICT_REFERRER = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
MODEL = "digits-mlp:1"
CHART_PAGES = [f"/overview/digits/{kind}/?model={MODEL}" for kind in REPORT_KINDS]
# (role, address) for every kind of page each role opens; the report pages draw plotly charts.
PAGES = [
    ("anonymous", "/accounts/login/"),
    ("anonymous", "/no/such/page/"),
    ("inspector", "/inspect/"),  # one queue: straight on to it (302)
    ("inspector", "/inspect/digits/"),
    ("inspector", "/inspect/history/"),
    ("ml_lead", "/overview/"),
    *[("ml_lead", path) for path in CHART_PAGES],
    ("ml_lead", "/overview/digits/adjudicate/next/"),  # nothing to adjudicate: 302
    ("ml_lead", "/rollout/"),
    ("ml_lead", "/rollout/digits/"),
    ("ml_lead", f"/rollout/digits/gate/{MODEL}/"),
    ("ml_lead", f"/models/{MODEL}/"),
    ("ml_lead", "/audit/"),
    ("ml_lead", "/api/docs"),
    ("ml_lead", "/api/openapi.json"),
    ("admin_user", "/models/upload/"),
    ("admin_user", "/rollout/digits/policy/"),
    ("admin_user", "/admin/"),
    ("admin_user", "/admin/auth/user/"),
    ("admin_user", "/admin/inspections/queue/"),
]


@pytest.fixture(scope="module")
def production_security() -> dict[str, object]:
    """Return the security settings as production loads them (DJANGO_DEBUG=false)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SECURE_", "SESSION_", "CSRF_"))
        and key not in ("SECRET_KEY", "ALLOWED_HOSTS")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="shadowlab.settings",
        DJANGO_DEBUG="false",
        SECRET_KEY="production-like-" + "k3y" * 20,
        ALLOWED_HOSTS="shadowlab.example.com",
    )
    names = ", ".join(f"{name!r}: s.{name}" for name in SECURITY_SETTINGS)
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import json; from django.conf import settings as s; print(json.dumps({{{names}}}))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(shown.stdout)


@pytest.fixture
def in_production(settings, production_security) -> None:
    for name, value in production_security.items():
        setattr(settings, name, value)


def test_production_settings_turn_on_hsts_and_lock_down_both_cookies(production_security, figure):
    figure("pages whose headers are checked (roles x pages)", len(PAGES))
    assert production_security["SECURE_HSTS_SECONDS"] >= 31536000
    assert production_security["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert production_security["SECURE_SSL_REDIRECT"] is True
    for cookie in ("SESSION", "CSRF"):
        assert production_security[f"{cookie}_COOKIE_SECURE"] is True
        assert production_security[f"{cookie}_COOKIE_HTTPONLY"] is True
        assert production_security[f"{cookie}_COOKIE_SAMESITE"] in ("Lax", "Strict")


def _policy(header: str) -> dict[str, list[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


@pytest.mark.parametrize(("role", "path"), PAGES, ids=[f"{r}-{p}" for r, p in PAGES])
def test_every_page_carries_the_security_headers(
    request, in_production, client_for, shadow_model, role, path
):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    response = client_for(user).get(path, secure=True)

    expected = {
        "/no/such/page/": 404,
        "/inspect/": 302,
        "/overview/digits/adjudicate/next/": 302,
    }.get(path, 200)
    assert response.status_code == expected, path
    policy = _policy(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    # plotly.js injects style elements and attributes: only its chart pages allow them.
    assert ("'unsafe-inline'" in policy["style-src"]) == (path in CHART_PAGES)
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] in STRICT_REFERRER
    assert response["X-Frame-Options"] == "DENY"
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


def test_plain_http_is_sent_to_https_in_production(in_production, client):
    response = client.get("/accounts/login/")
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def _set_cookie(response, name: str) -> dict[str, str | bool]:
    cookie = SimpleCookie()
    cookie.load(response.cookies[name].output(header="").strip())
    morsel = cookie[name]
    return {key: morsel[key] for key in ("secure", "httponly", "samesite")}


def test_login_cookies_are_secure_httponly_and_same_site_in_production(in_production, ml_lead):
    browser = Client()
    form = browser.get("/accounts/login/", secure=True)
    signed_in = browser.post(
        "/accounts/login/", {"username": "lead", "password": PASSWORD}, secure=True
    )
    assert signed_in.status_code == 302
    for response, name in ((form, "csrftoken"), (signed_in, "sessionid")):
        assert _set_cookie(response, name) == {"secure": True, "httponly": True, "samesite": "Lax"}
