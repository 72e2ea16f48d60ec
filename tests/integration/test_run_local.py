"""`manage.py run_local` as a newcomer runs it: embedded mode (SQLite and the file broker)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT, wait_until

pytestmark = pytest.mark.integration

PASSWORD = "smoke-test-password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _processes_with(marker: str) -> list[int]:
    """Return the pids whose environment carries this marker."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_run_local_serves_the_demo_with_a_file_broker_and_stops_on_ctrl_c(tmp_path):
    var = tmp_path / "var"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SHADOWLAB_BROKER_DIR")
    }
    env.update(
        SHADOWLAB_VAR_DIR=str(var),
        SHADOWLAB_DEMO_PASSWORD=PASSWORD,
        SHADOWLAB_METRICS_TOKEN="smoke-metrics-token",
        PYTHONUNBUFFERED="1",
    )
    command = [sys.executable, "manage.py", "run_local", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--broker", "filesystem", "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    output: list[str] = []
    reader = threading.Thread(
        target=lambda: output.extend(line.decode(errors="replace") for line in process.stdout),
        daemon=True,
    )
    reader.start()
    try:
        wait_until(
            lambda: (
                any("ShadowLab is running at" in line for line in output)
                or process.poll() is not None
            ),
            timeout=300,
            message="run_local never announced itself",
        )
        assert process.poll() is None, "".join(output[-40:])
        banner = "".join(output)
        assert f"{base}/" in banner
        assert f"inspector1  inspector  {PASSWORD}" in banner

        def ready() -> bool:
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=5) as response:
                    return json.load(response)["ready"]
            except OSError:
                return False

        wait_until(ready, timeout=60, message="readyz never became ready")

        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        browser.open(f"{base}/accounts/login/").read()
        csrf = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
        form = urllib.parse.urlencode(
            {"username": "inspector1", "password": PASSWORD, "csrfmiddlewaretoken": csrf}
        ).encode()
        browser.open(
            urllib.request.Request(f"{base}/accounts/login/", data=form, headers={"Referer": base})
        ).read()
        page = browser.open(f"{base}/inspect/digits/").read().decode()
        assert '<svg class="pixels"' in page
        # DEBUG is off by default: static files come through whitenoise from the collected
        # (hashed) copy, errors show the product's pages, the key is kept under var.
        stylesheet = re.search(r'href="(/static/css/shadowlab\.[0-9a-f]+\.css)"', page).group(1)
        with urllib.request.urlopen(f"{base}{stylesheet}", timeout=10) as response:
            assert response.status == 200
            assert "immutable" in response.headers["Cache-Control"]
        with pytest.raises(urllib.error.HTTPError) as missing:
            browser.open(f"{base}/no/such/page/")
        assert missing.value.code == 404
        not_found = missing.value.read().decode()
        assert "<h1>Page not found</h1>" in not_found and "URLconf" not in not_found
        assert (var / "secret-key").stat().st_mode & 0o777 == 0o600
        assert "DEBUG off" in banner

        created = subprocess.run(
            [sys.executable, "manage.py", "create_api_token", "--queue", "digits"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = re.search(r"slk_[A-Za-z0-9_-]+", created.stdout).group(0)
        request = urllib.request.Request(
            f"{base}/api/v1/queues/digits/items",
            data=json.dumps({"external_id": "smoke-1", "features": [0.0] * 64}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201
            item_id = json.load(response)["id"]

        def scored_by_every_shadow_model() -> bool:
            with sqlite3.connect(var / "shadowlab.sqlite3", timeout=10) as db:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM deployments_prediction "
                    "WHERE item_id = ? AND status = 'ok'",
                    (item_id,),
                ).fetchone()
            # The demo's FP32 model, its INT8 variant and the weaker candidate.
            return count == 3

        wait_until(scored_by_every_shadow_model, timeout=60, message="item was not scored")
        # The worker's counters reach the web's /metrics through the shared folder.
        scrape = urllib.request.Request(
            f"{base}/metrics", headers={"Authorization": "Bearer smoke-metrics-token"}
        )
        with urllib.request.urlopen(scrape, timeout=10) as response:
            metrics = response.read().decode()
        assert re.search(
            r'shadowlab_predictions_total\{model="digits-mlp:1",status="ok"\} [1-9]', metrics
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        process.wait(timeout=90)
    wait_until(
        lambda: not _processes_with(f"SHADOWLAB_VAR_DIR={var}"),
        timeout=30,
        message="processes were left running after Ctrl-C",
    )
