"""A real Celery worker process on the real broker, pointed at the test database."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from celery import Celery
from celery.app.control import Control
from django.conf import settings
from django.db import connection

from shadowlab.celery import app as celery_app

from .servers import RedisServer, WebServer

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """Return a URL for the database the tests are using right now."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


def wait_until(condition: Callable[[], bool], *, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s: {message}")


@dataclass
class WorkerProcess:
    """Starts, kills and restarts `celery worker` processes that share one log file."""

    env: dict[str, str]
    log_path: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    name: str = ""

    def start(self) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        log = self.log_path.open("ab")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "shadowlab",
                "worker",
                "-Q",
                "default,inference",
                "--concurrency",
                "2",
                "--hostname",
                self.name,
                "--without-gossip",
                "--without-mingle",
                "--loglevel",
                "INFO",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        wait_until(self.answers, timeout=60, message=f"worker did not start; see {self.log_path}")

    def answers(self) -> bool:
        process = self.processes[-1]
        if process.poll() is not None:
            raise AssertionError(f"worker exited with {process.returncode}; see {self.log_path}")
        try:
            return bool(self._control().ping(destination=[self.name], timeout=0.5))
        except Exception:
            return False

    def _control(self) -> Control:
        """Control through the worker's broker, which a test may have pointed elsewhere."""
        url = self.env["CELERY_BROKER_URL"]
        if url == settings.CELERY_BROKER_URL:
            return celery_app.control
        # Not the current app: shared tasks called later in the test must keep the suite's.
        return Celery("chaos-control", broker=url, set_as_current=False).control

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once, as a crash would."""
        process = self.processes[-1]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM the main process (warm shutdown, as docker stop does), then kill what is left.

        The whole process group is not sent SIGTERM: that kills the pool children mid-task,
        and on the file broker leaves the main process spinning in interpreter shutdown.
        """
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _purge() -> None:
    with celery_app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in ("default", "inference"):
            # A queue that was never declared has nothing to purge.
            with contextlib.suppress(Exception):
                channel.queue_purge(queue)  # type: ignore[attr-defined]


@pytest.fixture
def worker(transactional_db, tmp_path) -> Iterator[WorkerProcess]:
    """A worker process, not yet started, that sees this test's database and media."""
    _purge()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "SHADOWLAB_BROKER_DIR": str(settings.BROKER_DIR),
        "SHADOWLAB_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "SHADOWLAB_SWEEP_GRACE_SECONDS": "1",
        # A killed pool process's tasks are declared lost (and sent again) after 2 s, not 10.
        "SHADOWLAB_WORKER_LOST_WAIT_SECONDS": "2",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    process = WorkerProcess(env=env, log_path=tmp_path / "worker.log")
    yield process
    process.stop()
    _purge()


@pytest.fixture
def own_redis(tmp_path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, to stop and start (never the shared one)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder=folder)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def web_server(transactional_db, tmp_path) -> Iterator[Callable[..., WebServer]]:
    """Start gunicorn on this test's database and media, with the broker a test names."""
    started: list[WebServer] = []

    def start(*, broker_url: str, **extra: str) -> WebServer:
        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "SHADOWLAB_MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "DJANGO_DEBUG": "true",
            "OPENBLAS_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
        env.pop("REDIS_URL", None)
        server = WebServer(env=env, log_path=tmp_path / f"web-{len(started)}.log")
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.stop()
