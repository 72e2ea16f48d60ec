"""Inspector submit latency over HTTP, with shadow scoring on and off.

Starts gunicorn on the benchmark PostgreSQL database, then 20 simulated inspectors log in
and judge items through the real inspect screen (the htmx POST that records a judgment and
returns the next item), pausing a human-like moment between items. Meanwhile items keep
arriving through intake. The run is done twice: with the demo models in shadow and a
worker scoring every new item, and with no model in shadow; the table compares the two.

    .venv/bin/python bench/submit_latency.py [--inspectors 20] [--seconds 30] [--think 1.0]
"""

from __future__ import annotations

import argparse
import http.cookiejar
import multiprocessing
import random
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import (
    DEFAULT_DATABASE,
    DEFAULT_REDIS,
    WebServer,
    Workers,
    broker_purge,
    database_create,
    django_setup,
    services_start,
    table,
    tables_empty,
)

PASSWORD = "bench-inspector-password"  # noqa: S105 - users of a throwaway database
ITEM_ID = re.compile(r'name="item_id" value="(\d+)"')
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


class Inspector(threading.Thread):
    """Logs in, then judges items one after another until told to stop."""

    def __init__(self, base: str, username: str, think: float, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base, self.username, self.think, self.stop_event = base, username, think, stop
        self.latencies: list[float] = []
        self.errors = 0
        self.rng = random.Random(username)
        jar = http.cookiejar.CookieJar()
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        self.jar = jar

    def csrf(self) -> str:
        return next(cookie.value or "" for cookie in self.jar if cookie.name == "csrftoken")

    def login(self) -> str:
        self.http.open(f"{self.base}/accounts/login/").read()
        form = urllib.parse.urlencode(
            {"username": self.username, "password": PASSWORD, "csrfmiddlewaretoken": self.csrf()}
        ).encode()
        request = urllib.request.Request(
            f"{self.base}/accounts/login/?next=/inspect/digits/",
            data=form,
            headers={"Referer": self.base},
        )
        return self.http.open(request).read().decode()

    def run(self) -> None:
        page = self.login()
        while not self.stop_event.is_set():
            found = ITEM_ID.search(page)
            if not found:
                time.sleep(0.2)
                page = self.http.open(f"{self.base}/inspect/digits/").read().decode()
                continue
            time.sleep(self.rng.uniform(0.5, 1.5) * self.think)
            body = urllib.parse.urlencode(
                {
                    "item_id": found.group(1),
                    "label": str(self.rng.randrange(10)),
                    "csrfmiddlewaretoken": self.csrf(),
                }
            ).encode()
            request = urllib.request.Request(
                f"{self.base}/inspect/digits/judge",
                data=body,
                headers={"HX-Request": "true", "Referer": self.base},
            )
            started = time.perf_counter()
            try:
                with self.http.open(request, timeout=10) as response:
                    page = response.read().decode()
                self.latencies.append(time.perf_counter() - started)
            except OSError:
                self.errors += 1
                page = self.http.open(f"{self.base}/inspect/digits/").read().decode()


def intake_loop(queue_id: int, prefix: str, rate: float, stop: Any, arrived: Any) -> None:
    """Submit new items at `rate` items/s until stopped (runs in a child process)."""
    from inspections.models import Queue
    from inspections.services import items_create_bulk
    from shadowlab import digits

    queue = Queue.objects.get(pk=queue_id)
    features = digits.digits_split().holdout_x
    started = time.perf_counter()
    chunk = max(1, int(rate / 10))
    while not stop.is_set():
        sent = arrived.value
        items_create_bulk(
            queue=queue,
            rows=(
                (f"{prefix}-{sent + n}", features[(sent + n) % len(features)].tolist())
                for n in range(chunk)
            ),
        )
        arrived.value = sent + chunk
        pause = started + arrived.value / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inspectors", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0, help="Length of each round.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of each condition.")
    parser.add_argument("--think", type=float, default=1.0, help="Mean seconds between items.")
    parser.add_argument("--intake", type=float, default=500.0, help="New items/s meanwhile.")
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=10,
        help="nice level of the worker; -1 runs it with the idle scheduling policy.",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    args = parser.parse_args()

    services_start()
    database_create(args.database_url)
    var = django_setup(args.database_url, args.redis_url)

    from django.contrib.auth.models import Group, User
    from django.db import connections

    from deployments.models import Deployment
    from deployments.services import deployment_retire, deployment_shadow_start
    from inspections.services import items_create_bulk
    from shadowlab import digits, roles
    from shadowlab.demo import demo_setup

    tables_empty()
    broker_purge()
    demo = demo_setup(items=0, log=lambda line: None)
    group = Group.objects.get(name=roles.INSPECTOR)
    for number in range(args.inspectors):
        user, _ = User.objects.get_or_create(username=f"bench-inspector-{number}")
        user.set_password(PASSWORD)
        user.save()
        user.groups.add(group)
    features = digits.digits_split().holdout_x
    backlog = int(args.inspectors * args.seconds * 4 / max(args.think, 0.05)) + 1000
    items_create_bulk(
        queue=demo.queue,
        rows=((f"seed-{n}", features[n % len(features)].tolist()) for n in range(backlog)),
    )

    # A database in service has planner statistics; a freshly loaded one has none yet.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    web = WebServer(var, workers=3, threads=4)
    base = web.base
    # Shadow scoring is background work: its worker runs at a lower CPU priority than the
    # web server, as run_local and docker-compose.yml set it up.
    workers = Workers(1, nice=args.worker_nice, log_path=var / "workers.log")
    results: dict[str, tuple[list[float], int, int]] = {}
    try:
        web.start()
        workers.start()
        # Alternate short rounds so that both conditions see the same drift of the machine.
        for round_number, phase in enumerate(["shadow on", "shadow off"] * args.rounds):
            for deployment in Deployment.objects.filter(queue=demo.queue):
                if phase == "shadow on":
                    deployment_shadow_start(model_version=deployment.model_version, actor=None)
                else:
                    deployment_retire(deployment=deployment, actor=None)
            stop = threading.Event()
            cast = [
                Inspector(base, f"bench-inspector-{n}", args.think, stop)
                for n in range(args.inspectors)
            ]
            # Intake runs in its own process, so that it does not hold the interpreter lock
            # while the simulated inspectors time their requests.
            connections.close_all()
            stop_intake = multiprocessing.get_context("fork").Event()
            arrived = multiprocessing.get_context("fork").Value("i", 0)
            feeder = multiprocessing.get_context("fork").Process(
                target=intake_loop,
                args=(demo.queue.pk, f"round{round_number}", args.intake, stop_intake, arrived),
                daemon=True,
            )
            print(f"{phase}: {args.inspectors} inspectors for {args.seconds:.0f} s…", flush=True)
            feeder.start()
            for inspector in cast:
                inspector.start()
            time.sleep(args.seconds)
            stop.set()
            stop_intake.set()
            for inspector in cast:
                inspector.join(timeout=15)
            feeder.join(timeout=15)
            latencies = [t for inspector in cast for t in inspector.latencies]
            earlier, errors, count = results.get(phase, ([], 0, 0))
            results[phase] = (
                earlier + latencies,
                errors + sum(i.errors for i in cast),
                count + arrived.value,
            )
    finally:
        workers.stop()
        web.stop()

    rows: list[tuple[str, str]] = [
        ("server", "gunicorn, 3 processes x 4 threads, PostgreSQL + Redis"),
        ("simulated inspectors", f"{args.inspectors}, {args.think:.1f} s mean pause per item"),
        ("rounds", f"{args.rounds} x {args.seconds:.0f} s per condition, alternating"),
        ("items arriving meanwhile", f"{args.intake:,.0f} items/s"),
    ]
    percentiles = {}
    for phase, (latencies, errors, items_arrived) in results.items():
        ms = np.array(latencies) * 1000
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        percentiles[phase] = (p50, p95, p99)
        rows.append(
            (
                f"{phase}: submits",
                f"{len(ms):,} ({len(ms) / args.seconds / args.rounds:,.0f}/s), {errors} errors, "
                f"{items_arrived:,} items arrived",
            )
        )
        rows.append((f"{phase}: p50 / p95 / p99", f"{p50:.1f} / {p95:.1f} / {p99:.1f} ms"))
    on, off = percentiles["shadow on"], percentiles["shadow off"]
    rows.append(("p95 on / off", f"{on[1] / off[1]:.2f}x"))
    rows.append(("p99 on / off", f"{on[2] / off[2]:.2f}x"))
    print()
    print(table(rows, "inspector submit latency"))


if __name__ == "__main__":
    main()
