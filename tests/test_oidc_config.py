"""Single sign-on settings: off by default, the group map, no start when half configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from shadowlab import oidc_config, roles
from tests.test_oidc import BACKEND, CLIENT_ID, GROUP_MAP

ROOT = Path(__file__).resolve().parents[1]


# Off by default


def test_single_sign_on_is_off_by_default_and_its_urls_do_not_answer(client, db):
    from django.conf import settings

    assert settings.SHADOWLAB_OIDC_ENABLED is False
    assert BACKEND not in settings.AUTHENTICATION_BACKENDS
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    login = client.get("/accounts/login/").content.decode()
    assert "Sign in with" not in login
    assert "/oidc/" not in login


def test_the_sign_in_page_offers_the_provider_when_it_is_on(settings, client, db):
    settings.SHADOWLAB_OIDC_ENABLED = True
    settings.SHADOWLAB_OIDC_PROVIDER_NAME = "Example SSO"

    login = client.get("/accounts/login/?next=/overview/").content.decode()

    assert 'href="/oidc/authenticate/?next=/overview/"' in login
    assert "Sign in with Example SSO" in login
    assert "<script>" not in login  # the page keeps to the strict CSP


# Settings


def test_the_group_map_reads_provider_groups_to_roles():
    assert oidc_config.group_map_parse(GROUP_MAP + ", ") == {
        "shadowlab-inspectors": "inspector",
        "shadowlab-leads": "ml_lead",
        "shadowlab-admins": "admin",
    }
    assert set(oidc_config.ROLE_GROUPS) == set(roles.GROUP_PERMISSIONS)


@pytest.mark.parametrize("text", ["staff=superuser", "no-equals-sign", "=admin"])
def test_the_group_map_refuses_what_is_not_a_role(text):
    with pytest.raises(ImproperlyConfigured, match="SHADOWLAB_OIDC_GROUP_MAP"):
        oidc_config.group_map_parse(text)


def test_turning_single_sign_on_on_without_its_secret_fails_at_start():
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "SHADOWLAB_VAR_DIR": os.environ.get("SHADOWLAB_VAR_DIR", str(ROOT / "var")),
        "SHADOWLAB_OIDC_ENABLED": "true",
        "OIDC_RP_CLIENT_ID": CLIENT_ID,
        "OIDC_OP_DISCOVERY": "https://idp.example.com",
        "SHADOWLAB_OIDC_GROUP_MAP": GROUP_MAP,
    }
    completed = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode != 0
    assert "OIDC_RP_CLIENT_SECRET" in completed.stderr
