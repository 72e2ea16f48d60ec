"""`make run` serves safely by default: DEBUG off, a kept secret key, the product's error pages."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.test import RequestFactory
from django.views import defaults

from shadowlab import local_serving

ROOT = Path(__file__).resolve().parent.parent


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_key_is_made_once_readable_by_its_owner_only_and_reused(tmp_path):
    key = local_serving.secret_key_ensure(tmp_path)
    path = tmp_path / local_serving.SECRET_KEY_FILE
    assert len(key) >= 50
    assert _mode(path) == 0o600
    assert local_serving.secret_key_ensure(tmp_path) == key
    assert local_serving.secret_key_ensure(tmp_path / "other") != key


def test_secret_key_file_made_readable_by_others_is_tightened_and_kept(tmp_path):
    key = local_serving.secret_key_ensure(tmp_path)
    path = tmp_path / local_serving.SECRET_KEY_FILE
    path.chmod(0o644)
    assert local_serving.secret_key_ensure(tmp_path) == key
    assert _mode(path) == 0o600


def test_an_empty_or_short_secret_key_file_is_replaced(tmp_path):
    path = tmp_path / local_serving.SECRET_KEY_FILE
    path.write_text("short\n")
    key = local_serving.secret_key_ensure(tmp_path)
    assert key != "short" and len(key) >= 50
    assert path.read_text().strip() == key
    assert _mode(path) == 0o600


def _environment(**overrides: object) -> dict[str, str]:
    base = {"PATH": "/usr/bin", "SECURE_SSL_REDIRECT": "true", "SESSION_COOKIE_SECURE": "true"}
    options: dict = {
        "var_dir": Path("/srv/var"),
        "host": "127.0.0.1",
        "debug": False,
        "secret_key": "k" * 50,
    }
    options.update(overrides)
    return local_serving.local_server_environment(base, **options)


def test_local_stack_runs_with_debug_off_the_kept_key_and_plain_http_cookies():
    env = _environment()
    assert env["DJANGO_DEBUG"] == "false"
    assert env["SECRET_KEY"] == "k" * 50
    assert env["ALLOWED_HOSTS"].split(",") == ["localhost", "127.0.0.1", "[::1]"]
    assert env["STATIC_ROOT"] == "/srv/var/static"
    # The stack serves http on this machine: Secure-only cookies or a redirect to https
    # would make logging in impossible, whatever the shell had set.
    assert env["SECURE_SSL_REDIRECT"] == "false"
    assert env["SESSION_COOKIE_SECURE"] == env["CSRF_COOKIE_SECURE"] == "false"
    assert env["SECURE_HSTS_SECONDS"] == "0"
    assert env["PATH"] == "/usr/bin"


def test_debug_option_turns_debug_on_and_keeps_the_same_key():
    env = _environment(debug=True)
    assert env["DJANGO_DEBUG"] == "true"
    assert env["SECRET_KEY"] == "k" * 50


def test_a_key_and_hosts_given_in_the_environment_win():
    env = local_serving.local_server_environment(
        {"SECRET_KEY": "mine", "ALLOWED_HOSTS": "lab.example.com"},
        var_dir=Path("/v"),
        host="127.0.0.1",
        debug=False,
        secret_key="k" * 50,
    )
    assert env["SECRET_KEY"] == "mine"
    assert env["ALLOWED_HOSTS"] == "lab.example.com"


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", []), ("192.0.2.7", ["192.0.2.7"]), ("::1", []), ("fe80::2", ["[fe80::2]"])],
)
def test_allowed_hosts_add_the_address_the_server_listens_on(host, expected):
    assert local_serving.allowed_hosts(host) == ["localhost", "127.0.0.1", "[::1]", *expected]


def test_static_fingerprint_changes_with_a_file_and_the_stamp_says_when_collected(tmp_path):
    source = tmp_path / "app.css"
    source.write_text("body {}")
    before = local_serving.static_fingerprint([("app.css", source)])
    root = tmp_path / "collected"
    root.mkdir()
    assert not local_serving.static_up_to_date(root, before)
    local_serving.static_mark_collected(root, before)
    assert local_serving.static_up_to_date(root, before)
    source.write_text("body { color: red }")
    assert local_serving.static_fingerprint([("app.css", source)]) != before


def _settings_in_child(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    shown = (
        "import json; from django.conf import settings as s; print(json.dumps({"
        "'debug': s.DEBUG, 'key': s.SECRET_KEY, 'hosts': s.ALLOWED_HOSTS,"
        "'ssl_redirect': s.SECURE_SSL_REDIRECT, 'session_secure': s.SESSION_COOKIE_SECURE,"
        "'static': s.STORAGES['staticfiles']['BACKEND'], 'static_root': str(s.STATIC_ROOT)}))"
    )
    return subprocess.run(
        [sys.executable, "-c", shown], env=env, cwd=ROOT, capture_output=True, text=True
    )


def _clean_environment(var: Path) -> dict[str, str]:
    drop = {"SECRET_KEY", "DJANGO_DEBUG", "ALLOWED_HOSTS", "STATIC_ROOT", "DATABASE_URL"}
    env = {key: value for key, value in os.environ.items() if key not in drop}
    env.update(SHADOWLAB_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="shadowlab.settings")
    return env


@pytest.mark.security
def test_settings_of_the_local_stack_have_debug_off_and_the_key_kept_in_the_var_folder(tmp_path):
    key = local_serving.secret_key_ensure(tmp_path)
    env = local_serving.local_server_environment(
        _clean_environment(tmp_path), var_dir=tmp_path, host="127.0.0.1", debug=False,
        secret_key=key,
    )  # fmt: skip
    shown = _settings_in_child(env)
    assert shown.returncode == 0, shown.stderr
    loaded = json.loads(shown.stdout)
    assert loaded["debug"] is False
    assert loaded["key"] == key
    assert "127.0.0.1" in loaded["hosts"] and "localhost" in loaded["hosts"]
    assert loaded["ssl_redirect"] is False and loaded["session_secure"] is False
    assert loaded["static"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert loaded["static_root"] == str(tmp_path / "static")


@pytest.mark.security
def test_production_without_secret_key_fails_even_beside_a_kept_local_key(tmp_path):
    # Only run_local hands the kept key to its processes; settings never read the file.
    local_serving.secret_key_ensure(tmp_path)
    env = _clean_environment(tmp_path)
    env["DJANGO_DEBUG"] = "false"
    shown = _settings_in_child(env)
    assert shown.returncode != 0
    assert "SECRET_KEY must be set" in shown.stderr


# The handlers Django calls with DEBUG off render the project's templates, never a debug page.
@pytest.mark.django_db
@pytest.mark.parametrize(
    ("handler", "status", "heading"),
    [
        (lambda r: defaults.page_not_found(r, Exception("x")), 404, "Page not found"),
        (lambda r: defaults.permission_denied(r, PermissionDenied()), 403, "Not allowed"),
        (lambda r: defaults.bad_request(r, SuspiciousOperation()), 400, "Bad request"),
        (defaults.server_error, 500, "Server error"),
    ],
)
def test_error_pages_are_the_products_own(handler, status, heading, admin_user):
    request = RequestFactory().get("/somewhere")
    request.user = admin_user
    response = handler(request)
    page = response.content.decode()
    assert response.status_code == status
    assert f"<h1>{heading}</h1>" in page
    assert 'class="topbar"' in page and "shadowlab.css" in page


@pytest.mark.django_db
def test_an_unknown_address_shows_the_product_404_not_the_url_configuration(client, settings):
    settings.DEBUG = False
    response = client.get("/no/such/page/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "<h1>Page not found</h1>" in page
    assert "URLconf" not in page and "urlpatterns" not in page
