"""Shared set-up for the benchmarks: a PostgreSQL database, Redis, Django, gunicorn, workers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/shadowlab_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"


def _run_quiet(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, check=False).returncode == 0
    except FileNotFoundError:
        return False


def services_start() -> None:
    """Start the local PostgreSQL and Redis if they are installed and not running."""
    if not _run_quiet(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]):
        versions = (
            sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
        )
        if not versions:
            raise SystemExit(
                "PostgreSQL is not running on 127.0.0.1:5432 and is not installed here"
            )
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1].name, "main", "start"],
            check=True,
        )
        for _ in range(30):
            if _run_quiet(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]):
                break
            time.sleep(1)
    if not _run_quiet(["redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"]):
        if shutil.which("redis-server") is None:
            raise SystemExit("Redis is not running on 127.0.0.1:6379 and is not installed here")
        subprocess.run(
            [
                "redis-server",
                "--daemonize",
                "yes",
                "--bind",
                "127.0.0.1",
                "--port",
                "6379",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            check=True,
        )
        time.sleep(0.5)


def database_create(url: str) -> None:
    """Create the benchmark database afresh (it only ever holds benchmark data)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    if not name.startswith("shadowlab_bench"):
        raise SystemExit(
            f"refusing to recreate database '{name}': its name must start with shadowlab_bench"
        )
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    """Drop a benchmark's database (it only ever holds benchmark data)."""
    import psycopg
    from django.db import connections

    connections.close_all()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def django_setup(database_url: str, redis_url: str) -> Path:
    """Point Django at the benchmark database and broker, migrate, and return the var folder."""
    var = Path(tempfile.mkdtemp(prefix="shadowlab-bench-"))
    os.environ.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        SHADOWLAB_VAR_DIR=str(var),
        SHADOWLAB_DEMO_PASSWORD="bench-password-not-used",  # noqa: S106 - throwaway database
        DJANGO_SETTINGS_MODULE="shadowlab.settings",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        # Offered loads measure the server, not a token's budget: the limit is counted (its
        # cost is in the figures) but not reached.
        SHADOWLAB_API_RATE=os.environ.get("SHADOWLAB_API_RATE", "1000000/m"),
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return var


def tables_empty() -> None:
    """Remove items, judgments and predictions left by an earlier run."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE deployments_prediction, deployments_scoringattempt, "
            "inspections_judgment, inspections_assignment, inspections_item CASCADE"
        )


class Workers:
    """Celery worker processes on the benchmark database and broker."""

    def __init__(
        self,
        count: int,
        *,
        concurrency: int = 1,
        pool: str = "prefork",
        nice: int = 0,
        log_path: Path,
    ) -> None:
        self.nice = nice
        self.count = count
        self.pool = pool
        self.concurrency = concurrency
        self.log_path = log_path
        self.processes: list[subprocess.Popen[bytes]] = []
        self.names: list[str] = []

    def start(self) -> None:
        from shadowlab.celery import app

        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        for _ in range(self.count):
            name = f"bench-{uuid.uuid4().hex[:6]}@localhost"
            self.names.append(name)
            self.processes.append(
                subprocess.Popen(
                    [
                        *(["nice", "-n", str(self.nice)] if self.nice > 0 else []),
                        # nice below zero here means: run only when the CPU is otherwise idle.
                        *(["chrt", "--idle", "0"] if self.nice < 0 else []),
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "shadowlab",
                        "worker",
                        "-Q",
                        "default,inference",
                        "--concurrency",
                        str(self.concurrency),
                        "--pool",
                        self.pool,
                        "--hostname",
                        name,
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel",
                        os.environ["LOG_LEVEL"],
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = app.control.ping(destination=self.names, timeout=0.5) or []
            if len(replies) == self.count:
                return
        raise SystemExit(f"workers did not start; see {self.log_path}")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class WebServer:
    """gunicorn (gthread) on loopback with the production settings: DEBUG off, static collected.

    Runs on the database and broker django_setup chose; its log is var/web.log.
    """

    def __init__(
        self, var: Path, *, workers: int, threads: int, options: tuple[str, ...] = ()
    ) -> None:
        self.var, self.workers, self.threads, self.options = var, workers, threads, options
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "DJANGO_DEBUG": "false",
            "SECRET_KEY": "bench-" + "x" * 50,
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "SECURE_HSTS_SECONDS": "0",
            "STATIC_ROOT": str(var / "static"),
            "OPENBLAS_NUM_THREADS": "1",
        }

    def start(self) -> None:
        """Collect static files, start gunicorn and wait until it answers /healthz."""
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "shadowlab.wsgi"),
                # Production's settings (hooks, timeouts); these options override its own.
                *("--config", "python:shadowlab.gunicorn_conf"),
                *("--bind", f"127.0.0.1:{self.port}", "--worker-class", "gthread"),
                *("--workers", str(self.workers), "--threads", str(self.threads)),
                *self.options,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=(self.var / "web.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.base}/healthz", timeout=1).read()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.2)
        raise SystemExit(f"gunicorn did not answer; see {self.var / 'web.log'}")

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def stop(self) -> None:
        process_group_stop(self.process)


def process_group_stop(process: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    """SIGTERM a process started in a session of its own and its children; SIGKILL if need be."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def broker_purge() -> None:
    from shadowlab.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "inference"):
            # A queue that was never declared has nothing to purge.
            with contextlib.suppress(Exception):
                conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]


def table(rows: list[tuple[str, str]], title: str) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)
