"""S1: Django's deployment checklist passes on production settings, warnings included."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.security

ROOT = Path(__file__).resolve().parent.parent


def _production_environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The environment docker-compose gives the web container (no database is reached)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SECURE_", "SESSION_", "CSRF_"))
        and key not in ("SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="shadowlab.settings",
        DJANGO_DEBUG="false",
        SECRET_KEY="production-like-" + "k3y" * 20,
        ALLOWED_HOSTS="shadowlab.example.com",
        DATABASE_URL="postgres://shadowlab:secret@db.invalid:5432/shadowlab",
        SHADOWLAB_VAR_DIR=str(tmp_path),
    )
    env.update(overrides)
    return env


def _deploy_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path, figure):
    started = time.perf_counter()
    checked = _deploy_check(_production_environment(tmp_path))
    figure("check --deploy seconds", round(time.perf_counter() - started, 2))
    figure("check --deploy issues", checked.stdout.count("?:") + checked.stderr.count("?:"))
    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues" in checked.stdout


def test_check_deploy_fails_on_debug_settings(tmp_path):
    # The check can fail: the same command refuses DEBUG and plain-HTTP cookies.
    checked = _deploy_check(
        _production_environment(tmp_path, DJANGO_DEBUG="true", SESSION_COOKIE_SECURE="false")
    )
    assert checked.returncode != 0
    assert "security.W018" in checked.stderr  # DEBUG on
    assert "security.W012" in checked.stderr  # session cookie not Secure
