"""Commands in a second terminal reach the running local stack; it restarts at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT, wait_until
from .test_run_local import PASSWORD, _free_port

pytestmark = pytest.mark.integration


class Runner:
    """One `manage.py run_local` in the embedded mode, its output collected."""

    def __init__(self, var: Path, port: int, env: dict[str, str]) -> None:
        self.output: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "run_local",
                "--port",
                str(port),
                "--broker",
                "filesystem",
                "--concurrency",
                "1",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        stream = self.process.stdout
        threading.Thread(
            target=lambda: self.output.extend(line.decode(errors="replace") for line in stream),
            daemon=True,
        ).start()
        wait_until(
            lambda: (
                any("ShadowLab is running at" in line for line in self.output)
                or self.process.poll() is not None
            ),
            timeout=300,
            message="run_local never announced itself",
        )
        assert self.process.poll() is None, "".join(self.output[-40:])

    def tail(self, lines: int = 60) -> str:
        return "".join(self.output[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=90)


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a manage.py command as a second terminal would, beside the running stack."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def _unscored(var: Path) -> int:
    with sqlite3.connect(var / "shadowlab.sqlite3", timeout=10) as db:
        (count,) = db.execute(
            "SELECT COUNT(*) FROM inspections_item i, deployments_deployment d "
            "WHERE d.queue_id = i.queue_id AND d.role = 'shadow' AND NOT EXISTS ("
            " SELECT 1 FROM deployments_prediction p"
            " WHERE p.item_id = i.id AND p.model_version_id = d.model_version_id)"
        ).fetchone()
    return int(count)


def test_side_commands_reach_the_running_worker_and_the_stack_restarts_at_once(tmp_path):
    var = tmp_path / "var"
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SHADOWLAB_BROKER_DIR")
    }
    env.update(
        SHADOWLAB_VAR_DIR=str(var),
        SHADOWLAB_DEMO_PASSWORD=PASSWORD,
        PYTHONUNBUFFERED="1",
        # The sweeper must not be what scores the items.
        SHADOWLAB_SWEEP_INTERVAL_SECONDS="3600",
    )
    runner = Runner(var, port, env)
    try:
        wait_until(lambda: _unscored(var) == 0, timeout=120, message="demo items unscored")
        side = _manage(env, "simulate", "--items", "200", "--seed", "3")
        assert "no ShadowLab stack is running" not in side.stderr
        rows = ["external_id," + ",".join(f"f{i}" for i in range(64))]
        rows += [f"side-{n}," + ",".join(str(n % 17) for _ in range(64)) for n in range(50)]
        csv_path = tmp_path / "items.csv"
        csv_path.write_text("\n".join(rows) + "\n")
        _manage(env, "import_items", str(csv_path), "--queue", "digits")
        # Without the runner's broker these items would wait for a sweep (disabled here).
        # Scored within a few seconds on an idle machine; the margin is for a loaded CI host.
        started = time.monotonic()
        try:
            wait_until(
                lambda: _unscored(var) == 0,
                timeout=60,
                message="items from the side commands were not scored by the running worker",
            )
        except AssertionError as error:
            raise AssertionError(
                f"{error}; {_unscored(var)} unscored; side command said:\n{side.stdout}"
                f"{side.stderr}\nthe runner's last lines:\n{runner.tail()}"
            ) from None
        print(f"side-command items scored {time.monotonic() - started:.1f} s after the commands")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
    finally:
        runner.stop()
    assert not (var / "broker-url").exists()

    # The connections just closed linger in TIME_WAIT; a new runner still starts.
    again = Runner(var, port, env)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
    finally:
        again.stop()

    stopped = _manage(env, "simulate", "--items", "5", "--seed", "4")
    assert "no ShadowLab stack is running" in stopped.stderr
