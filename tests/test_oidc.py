"""Single sign-on through a real OpenID Connect provider (shadowlab.oidc).

The provider is django-oidc-provider, run as a Django project of its own in a subprocess
(tests/oidc_provider) with its own SQLite file and RSA signing key; ShadowLab runs on
pytest-django's live server. A requests session plays the browser through the whole
authorization-code flow: ShadowLab's button, the provider's sign-in and consent forms,
the callback with its token exchange, ID token signature check and userinfo call.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth.models import User

from deployments.models import AuditEvent
from shadowlab import oidc, oidc_config, roles
from shadowlab.role_audit import ACTION as ROLES_CHANGED

ROOT = Path(__file__).resolve().parents[1]
CLIENT_ID = "shadowlab-test"
# Made up for the test provider, which lives as long as the test module.
CLIENT_SECRET = "client-secret-known-only-to-this-test"
PROVIDER_PASSWORD = "provider-password"
GROUP_MAP = "shadowlab-inspectors=inspector,shadowlab-leads=ml_lead,shadowlab-admins=admin"
BACKEND = "shadowlab.oidc.ShadowLabOIDCBackend"


# The provider


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Provider:
    """The test identity provider: its URL, and a way to set a user's groups there."""

    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.url = url
        self.env = env

    def user(self, name: str, *groups: str) -> None:
        """Create or update a user of the provider with exactly these groups."""
        _provider_setup(self.env, "--user", name, PROVIDER_PASSWORD, *groups)


def _provider_setup(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "tests.oidc_provider.setup", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def provider(live_server, tmp_path_factory) -> Iterator[Provider]:
    """Start the provider with ShadowLab's live server registered as its client."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.oidc_provider.settings",
        "OIDC_TEST_PROVIDER_DIR": str(tmp_path_factory.mktemp("identity-provider")),
    }
    _provider_setup(env, f"{live_server.url}/oidc/callback/", CLIENT_ID, CLIENT_SECRET)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/openid"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/.well-known/openid-configuration", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, "the identity provider did not start"
            assert time.monotonic() < deadline, "the identity provider did not answer"
            time.sleep(0.2)
        yield Provider(url, env)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def sso(settings, transactional_db, provider) -> Iterator[Provider]:
    """Turn single sign-on on against the provider, its endpoints found by discovery."""
    roles.groups_sync()  # a transactional test flushed the groups the migration made
    settings.SHADOWLAB_OIDC_ENABLED = True
    settings.SHADOWLAB_OIDC_PROVIDER_NAME = "Test IdP"
    settings.SHADOWLAB_OIDC_GROUP_MAP = oidc_config.group_map_parse(GROUP_MAP)
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, BACKEND]
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_RP_SCOPES = "openid email profile groups"
    settings.OIDC_OP_DISCOVERY = provider.url
    oidc._discovery_document.cache_clear()
    yield provider
    oidc._discovery_document.cache_clear()


# The browser


class _Forms(HTMLParser):
    """Collect the inputs of a page's forms by name (the last value of a name wins)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.action: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = values.get("action") or ""
        if tag == "input" and values.get("name") and values.get("type") != "submit":
            self.fields[str(values["name"])] = values.get("value") or ""


def _form(page: requests.Response) -> tuple[str, dict[str, str]]:
    parser = _Forms()
    parser.feed(page.text)
    action = parser.action or page.url
    if action.startswith("/"):
        parts = urlsplit(page.url)
        action = f"{parts.scheme}://{parts.netloc}{action}"
    elif not action.startswith("http"):
        action = page.url
    return action, parser.fields


def sign_in(base_url: str, username: str, *, browser: requests.Session | None = None) -> Any:
    """Click "Sign in with", sign in at the provider, allow ShadowLab; return the last page."""
    browser = browser or requests.Session()
    login = browser.get(f"{base_url}/oidc/authenticate/", timeout=30)
    assert "Test identity provider" in login.text, login.text[:500]
    action, fields = _form(login)
    fields.update(username=username, password=PROVIDER_PASSWORD)
    consent = browser.post(action, data=fields, timeout=30)
    assert "Request for Permission" in consent.text, consent.text[:500]
    action, fields = _form(consent)
    page = browser.post(action, data={**fields, "allow": "Authorize"}, timeout=30)
    page.browser = browser  # type: ignore[attr-defined]
    return page


def _roles_of(username: str) -> set[str]:
    user = User.objects.get(username=username)
    return set(user.groups.values_list("name", flat=True))


# Signing in


@pytest.mark.security
def test_an_inspector_signs_in_through_the_provider_and_lands_on_the_inspection_queues(
    sso, live_server, figure
):
    sso.user("alice", "shadowlab-inspectors", "some-other-team")

    started = time.perf_counter()
    page = sign_in(live_server.url, "alice")
    figure(
        "sign-in through the provider, button to landing page (s)",
        round(time.perf_counter() - started, 3),
    )

    assert page.status_code == 200
    assert urlsplit(page.url).path == "/inspect/"
    alice = User.objects.get(username="alice")
    assert _roles_of("alice") == {roles.INSPECTOR}
    assert (alice.email, alice.is_staff, alice.is_superuser) == ("alice@idp.test", False, False)
    assert not alice.has_usable_password()
    # Signed in for the pages after it, with the inspector's permissions only.
    assert page.browser.get(f"{live_server.url}/overview/", timeout=30).status_code == 403
    event = AuditEvent.objects.get(action=ROLES_CHANGED, subject_id=str(alice.pk))
    assert (event.actor, event.evidence) == (alice, oidc.SIGN_IN_EVIDENCE)
    assert (event.before["groups"], event.after["groups"]) == ([], [roles.INSPECTOR])


@pytest.mark.parametrize(
    ("group", "role", "landing"),
    [
        ("shadowlab-leads", roles.ML_LEAD, "/overview/"),
        ("shadowlab-admins", roles.ADMIN, "/rollout/"),
    ],
)
def test_leads_and_admins_get_their_role_and_staff_status_and_land_on_their_page(
    sso, live_server, group, role, landing
):
    sso.user("bea", group)

    page = sign_in(live_server.url, "bea")

    assert (page.status_code, urlsplit(page.url).path) == (200, landing)
    bea = User.objects.get(username="bea")
    assert _roles_of("bea") == {role}
    assert (bea.is_staff, bea.is_superuser) == (True, False)


@pytest.mark.security
def test_someone_in_no_mapped_group_is_refused_with_a_page_that_says_why(sso, live_server):
    sso.user("mallory", "marketing")

    page = sign_in(live_server.url, "mallory")

    assert page.status_code == 403
    assert "none of the groups that give a role in ShadowLab" in page.text
    assert not User.objects.filter(username="mallory").exists()
    # Not signed in: ShadowLab still sends them to the sign-in page.
    home = page.browser.get(f"{live_server.url}/", timeout=30, allow_redirects=False)
    assert home.headers["Location"].startswith("/accounts/login/")


@pytest.mark.security
def test_a_group_removed_at_the_provider_is_taken_away_at_the_next_sign_in(sso, live_server):
    sso.user("carol", "shadowlab-leads", "shadowlab-inspectors")
    sign_in(live_server.url, "carol")
    assert _roles_of("carol") == {roles.ML_LEAD, roles.INSPECTOR}
    assert User.objects.get(username="carol").is_staff

    sso.user("carol", "shadowlab-inspectors")
    page = sign_in(live_server.url, "carol")

    assert urlsplit(page.url).path == "/inspect/"
    assert _roles_of("carol") == {roles.INSPECTOR}
    assert not User.objects.get(username="carol").is_staff
    last = AuditEvent.objects.filter(action=ROLES_CHANGED).latest("pk")
    assert last.before["groups"] == [roles.INSPECTOR, roles.ML_LEAD]
    assert last.after["groups"] == [roles.INSPECTOR]
    assert last.evidence == oidc.SIGN_IN_EVIDENCE

    # With no mapped group left, the sign-in is refused and the last role goes too.
    sso.user("carol")
    assert sign_in(live_server.url, "carol").status_code == 403
    assert _roles_of("carol") == set()


@pytest.mark.security
def test_a_provider_user_cannot_take_over_an_account_that_signs_in_with_a_password(
    sso, live_server
):
    local = User.objects.create_user("lead", password="local-password-1")
    local.groups.add(roles_group(roles.INSPECTOR))
    sso.user("lead", "shadowlab-admins")

    page = sign_in(live_server.url, "lead")

    assert page.status_code == 403
    assert "signs in with its password" in page.text
    assert _roles_of("lead") == {roles.INSPECTOR}
    assert not User.objects.get(username="lead").is_staff


def roles_group(name: str) -> Any:
    from django.contrib.auth.models import Group

    return Group.objects.get(name=name)


@pytest.mark.security
def test_refused_sign_ins_do_not_lock_colleagues_out_through_django_axes(
    sso, live_server, settings
):
    settings.AXES_FAILURE_LIMIT = 2
    sso.user("mallory", "marketing")
    sso.user("dave", "shadowlab-inspectors")
    for _ in range(3):
        assert sign_in(live_server.url, "mallory").status_code == 403

    assert urlsplit(sign_in(live_server.url, "dave").url).path == "/inspect/"


def test_password_sign_in_works_while_the_provider_is_down(settings, client, inspector):
    from tests.conftest import PASSWORD

    settings.SHADOWLAB_OIDC_ENABLED = True
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, BACKEND]
    settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    settings.OIDC_OP_DISCOVERY = f"http://127.0.0.1:{_free_port()}"  # nobody listens
    oidc._discovery_document.cache_clear()

    # A code and state in the URL do not make the password form call the provider.
    response = client.post(
        "/accounts/login/?code=forged&state=forged",
        {"username": "inspector1", "password": PASSWORD},
    )

    assert (response.status_code, response["Location"]) == (302, "/")
    assert client.get("/oidc/authenticate/").status_code == 502


# Signing out


def _sign_out(browser: requests.Session, base_url: str) -> requests.Response:
    """Press "Log out" on ShadowLab's home page; return the answer without following it."""
    page = browser.get(f"{base_url}/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    return browser.post(
        f"{base_url}/accounts/logout/",
        data={"csrfmiddlewaretoken": token.group(1)},
        allow_redirects=False,
        timeout=30,
    )


@pytest.mark.security
def test_signing_out_ends_the_session_at_the_provider_too(sso, live_server):
    sso.user("ivy", "shadowlab-inspectors")
    browser = sign_in(live_server.url, "ivy").browser

    answer = _sign_out(browser, live_server.url)

    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}".startswith(
        f"{sso.url}/end-session"
    )
    query = parse_qs(location.query)
    assert query["post_logout_redirect_uri"] == [f"{live_server.url}/accounts/login/"]
    assert query["client_id"] == [CLIENT_ID] and query["id_token_hint"][0].count(".") == 2
    back = browser.get(answer.headers["Location"], timeout=30)
    assert back.url == f"{live_server.url}/accounts/login/"
    # Signed out here...
    inspect = browser.get(f"{live_server.url}/inspect/", allow_redirects=False, timeout=30)
    assert inspect.headers["Location"].startswith("/accounts/login/")
    # ...and at the provider: signing in again asks for the password, not only for consent.
    again = browser.get(f"{live_server.url}/oidc/authenticate/", timeout=30)
    assert "Test identity provider" in again.text and "password" in again.text


def test_a_password_user_or_an_unreachable_provider_signs_out_here_only(
    settings, client, inspector
):
    settings.SHADOWLAB_OIDC_ENABLED = True
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_OP_DISCOVERY = f"http://127.0.0.1:{_free_port()}"  # nobody listens
    oidc._discovery_document.cache_clear()
    client.force_login(inspector)
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"
    assert client.get("/inspect/")["Location"].startswith("/accounts/login/")

    # Someone who came through the provider, while it does not answer: signed out here.
    client.force_login(inspector)
    session = client.session
    session["oidc_id_token"] = "header.payload.signature"
    session.save()
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"
    assert client.get("/inspect/")["Location"].startswith("/accounts/login/")


@pytest.mark.security
def test_a_callback_with_a_state_this_session_did_not_start_is_refused(sso, live_server):
    browser = requests.Session()
    browser.get(f"{live_server.url}/oidc/authenticate/", timeout=30)  # a state of its own

    forged = browser.get(f"{live_server.url}/oidc/callback/?code=stolen&state=not-ours", timeout=30)
    declined = browser.get(f"{live_server.url}/oidc/callback/?error=access_denied", timeout=30)

    assert forged.status_code == 400
    assert declined.status_code == 403
    assert "did not sign you in" in declined.text
    assert not User.objects.exists()


# The sign-in service, with claims as a provider would send them


@pytest.fixture
def group_map(settings) -> None:
    settings.SHADOWLAB_OIDC_GROUP_MAP = oidc_config.group_map_parse(GROUP_MAP)


def test_the_username_comes_from_the_configured_claim_else_from_sub(db, settings, group_map):
    claims = {"sub": "f81d4fae", "preferred_username": "frank", "groups": ["shadowlab-leads"]}
    assert oidc.oidc_user_sign_in(claims=claims).user.username == "frank"

    settings.SHADOWLAB_OIDC_USERNAME_CLAIM = "sub"
    assert oidc.oidc_user_sign_in(claims=claims).user.username == "f81d4fae"
    nameless = {"sub": "c0ffee", "groups": ["shadowlab-leads"]}
    settings.SHADOWLAB_OIDC_USERNAME_CLAIM = "preferred_username"
    assert oidc.oidc_user_sign_in(claims=nameless).user.username == "c0ffee"


@pytest.mark.security
@pytest.mark.parametrize(
    "claims",
    [
        {"groups": ["shadowlab-admins"]},  # no name at all
        {"sub": "x" * 151, "groups": ["shadowlab-admins"]},  # longer than a username may be
        {"sub": "grace", "groups": "shadowlab-nobody"},  # one group, as a string, unmapped
        {"sub": "grace", "groups": [{"name": "shadowlab-admins"}]},  # not a group name
        {"sub": "grace", "groups": {"shadowlab-admins": True}},  # not a list
        {"sub": "grace", "groups": 7},
    ],
)
def test_claims_without_a_name_or_a_mapped_group_sign_nobody_in(db, group_map, claims):
    outcome = oidc.oidc_user_sign_in(claims=claims)

    assert outcome.user is None and outcome.refusal
    assert not User.objects.exists()


def test_one_group_sent_as_a_string_is_read_as_that_group(db, group_map):
    outcome = oidc.oidc_user_sign_in(claims={"sub": "heidi", "groups": "shadowlab-inspectors"})

    assert outcome.roles == [roles.INSPECTOR]


@pytest.mark.security
def test_a_disabled_or_superuser_account_is_not_signed_in_by_the_provider(db, group_map):
    disabled = User.objects.create_user("ivan", is_active=False)
    disabled.set_unusable_password()
    disabled.save()
    User.objects.create_superuser("root", password=None)  # no usable password either
    admins = {"groups": ["shadowlab-admins"]}

    assert "disabled" in oidc.oidc_user_sign_in(claims={"sub": "ivan", **admins}).refusal
    assert oidc.oidc_user_sign_in(claims={"sub": "root", **admins}).user is None
    assert _roles_of("ivan") == _roles_of("root") == set()
