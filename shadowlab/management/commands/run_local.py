"""Run the whole product on this machine: broker, web server, Celery worker and beat."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from honcho.manager import Manager
from honcho.printer import Printer

from shadowlab import local_serving, local_stack
from shadowlab.demo import DEMO_USERS


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_redis(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.1)
    raise CommandError(f"redis-server did not answer on port {port} within {timeout:.0f} s")


class Command(BaseCommand):
    help = (
        "Run ShadowLab locally: migrate, set up the demo, then run the web server, a Celery "
        "worker and Celery beat together until Ctrl-C. Uses Redis when REDIS_URL is set or "
        "redis-server is installed, otherwise a file broker under the var folder."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--broker",
            choices=["auto", "redis", "filesystem"],
            default="auto",
            help="auto: REDIS_URL, else a private redis-server if installed, else files.",
        )
        parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 2)
        parser.add_argument("--no-demo", action="store_true", help="Skip the demo set-up.")
        parser.add_argument(
            "--debug",
            action="store_true",
            help="Development only: DEBUG on (tracebacks in the browser, static files read "
            "from the source folders). Without it errors show the product's error pages.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        host, port = options["host"], options["port"]
        if local_stack.port_listener(host, port):
            holder = local_stack.port_holder(port)
            raise CommandError(
                f"port {port} on {host} is in use"
                + (f" by {holder}" if holder else "")
                + "; stop that process or choose another port with --port"
            )
        var = Path(settings.VAR_DIR)
        running = local_stack.stack_broker_url(var)
        if running is not None:
            raise CommandError(
                f"a ShadowLab stack already runs on {var} (broker {running}); stop it first"
            )
        var.mkdir(parents=True, exist_ok=True)
        metrics_dir = var / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = local_serving.local_server_environment(
            os.environ,
            var_dir=var,
            host=host,
            debug=options["debug"],
            secret_key=local_serving.secret_key_ensure(var),
        )
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "OPENBLAS_NUM_THREADS": "1",
                # Web, worker and beat processes share their metrics through this folder.
                "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            }
        )
        env.setdefault("DJANGO_SETTINGS_MODULE", "shadowlab.settings")
        manager = Manager(Printer(sys.stdout))
        self.redis: subprocess.Popen[bytes] | None = None
        try:
            self._run(options, env, manager, var)
        finally:
            local_stack.stack_forget(var)
            if self.redis is not None:
                self.redis.terminate()
                self.redis.wait(timeout=10)
        sys.exit(manager.returncode)

    def _run(
        self, options: dict[str, Any], env: dict[str, str], manager: Manager, var: Path
    ) -> None:
        host, port = options["host"], options["port"]
        broker_note = self._broker(options["broker"], env, var)
        # Commands run in another terminal read this and queue where this worker reads.
        local_stack.stack_record(var, env["CELERY_BROKER_URL"])

        python = shlex.quote(sys.executable)
        manage = f"{python} {shlex.quote(str(Path(settings.BASE_DIR) / 'manage.py'))}"
        self.stdout.write("preparing the database and the demo…")
        steps = [f"{manage} migrate --noinput -v0"]
        if not options["no_demo"]:
            steps.append(f"{manage} demo")
        for step in steps:
            completed = subprocess.run(step, shell=True, env=env, check=False)  # noqa: S602
            if completed.returncode:
                raise CommandError(f"`{step}` failed with exit code {completed.returncode}")
        if not options["debug"]:
            self._static_collect(manage, env)

        celery = f"{python} -m celery -A shadowlab"
        manager.add_process(
            "web", f"{manage} runserver {host}:{port} --noreload --skip-checks", env=env
        )
        # Scoring is background work: the worker yields the CPU to the web server.
        nice = "nice -n 10 " if shutil.which("nice") else ""
        manager.add_process(
            "worker",
            f"{nice}{celery} worker -Q default,inference --concurrency {options['concurrency']} "
            "--without-gossip --without-mingle --loglevel INFO",
            env=env,
        )
        manager.add_process("beat", f"{celery} beat --loglevel INFO", env=env)

        url = f"http://{host}:{port}/"
        mode_note = (
            "DEBUG on (--debug): tracebacks are shown in the browser; for development only"
            if options["debug"]
            else "DEBUG off; pass --debug for development tracebacks"
        )
        threading.Thread(
            target=self._announce,
            args=(url, f"{broker_note}\n{mode_note}", options["no_demo"]),
            daemon=True,
        ).start()
        manager.loop()

    def _static_collect(self, manage: str, env: dict[str, str]) -> None:
        """Collect static files for whitenoise, unless the collection is already up to date."""
        from django.contrib.staticfiles import finders

        static_root = Path(env["STATIC_ROOT"])
        fingerprint = local_serving.static_fingerprint(
            (name, Path(storage.path(name)))
            for finder in finders.get_finders()
            for name, storage in finder.list(["CVS", ".*", "*~"])
        )
        if local_serving.static_up_to_date(static_root, fingerprint):
            return
        self.stdout.write(f"collecting static files into {static_root} (once per change)…")
        step = f"{manage} collectstatic --noinput -v0"
        completed = subprocess.run(step, shell=True, env=env, check=False)  # noqa: S602
        if completed.returncode:
            raise CommandError(f"`{step}` failed with exit code {completed.returncode}")
        local_serving.static_mark_collected(static_root, fingerprint)

    def _broker(self, choice: str, env: dict[str, str], var: Path) -> str:
        if choice != "filesystem" and (env.get("CELERY_BROKER_URL") or env.get("REDIS_URL")):
            env.setdefault("CELERY_BROKER_URL", env.get("REDIS_URL", ""))
            return f"broker: {env['CELERY_BROKER_URL']}"
        server = shutil.which("redis-server")
        if choice == "redis" and server is None:
            raise CommandError("--broker redis needs REDIS_URL or redis-server on PATH")
        if choice != "filesystem" and server is not None:
            port = _free_port()
            folder = var / "redis"
            folder.mkdir(parents=True, exist_ok=True)
            # Started ahead of the others (so the demo's items reach it) and stopped last.
            self.redis = subprocess.Popen(
                [
                    server,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(folder),
                ],
                stdout=subprocess.DEVNULL,
            )
            _wait_for_redis(port)
            env["REDIS_URL"] = env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
            return f"broker: private redis-server on 127.0.0.1:{port}"
        env.pop("REDIS_URL", None)
        env["CELERY_BROKER_URL"] = "filesystem://localhost/"
        return (
            "broker: files under var/broker (local mode: a killed worker can lose the tasks "
            "it was running; the sweeper queues those items again)"
        )

    def _announce(self, url: str, broker_note: str, no_demo: bool) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "healthz", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        lines = ["", "=" * 72, f"ShadowLab is running at {url}", broker_note]
        if not no_demo:
            from shadowlab.demo import demo_password

            password, source = demo_password()
            lines.append(f"logins (password from {source}):")
            lines += [f"  {name:<11} {group:<10} {password}" for name, group, _, _ in DEMO_USERS]
        lines += ["Press Ctrl-C to stop everything.", "=" * 72, ""]
        self.stdout.write("\n".join(lines))
