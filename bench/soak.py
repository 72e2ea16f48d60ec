"""Soak: steady intake and judging for a long time, with the processes' memory sampled.

Starts the production stack on a PostgreSQL database of its own: gunicorn, a Celery worker
(the demo FP32 and INT8 models in shadow score every new item) and Celery beat (sweeper,
rollback monitor, rollups). For --minutes, API clients POST single items at a steady rate,
simulated inspectors judge items through the inspect screen, and an ml_lead reads the report
pages. Every --sample-seconds the memory of the web, worker and beat processes (RSS and
USS, each summed over the main process and its children) is printed; at the end the growth
per hour of each (least-squares slope over the samples after --warmup-minutes, at most half
the run, and over the second half alone), request latencies and errors, and how far scoring
kept up.

    .venv/bin/python bench/soak.py [--minutes 30] [--rate 10] [--inspectors 5] [--drop]

Its database (shadowlab_bench_soak) is dropped and created afresh by each run; --drop drops
it at the end.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import json
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import (
    ROOT,
    WebServer,
    Workers,
    broker_purge,
    database_create,
    database_drop,
    django_setup,
    process_group_stop,
    services_start,
    table,
)
from bench.submit_latency import PASSWORD, Inspector

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/shadowlab_bench_soak"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"
DEMO_PASSWORD = "bench-password-not-used"  # noqa: S105 - set by django_setup for the demo users
REPORT_PAGES = ["/overview/", "/overview/digits/agreement/", "/overview/digits/drift/"]


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, ok: bool) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.errors += not ok


def intake_client(port: int, token: str, rate: float, stop: threading.Event, tally: Tally) -> None:
    """POST one item at a time at `rate` items/s on one kept-alive connection."""
    from shadowlab import digits

    rows = digits.digits_split().holdout_x
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started, sent = time.monotonic(), 0
    prefix = f"soak-{threading.get_ident()}"
    while not stop.is_set():
        body = json.dumps(
            {"external_id": f"{prefix}-{sent}", "features": rows[sent % len(rows)].tolist()}
        )
        began = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/queues/digits/items", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            tally.add(time.perf_counter() - began, response.status == 201)
        except (OSError, http.client.HTTPException):
            tally.add(time.perf_counter() - began, False)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sent += 1
        stop.wait(max(0.0, started + sent / rate - time.monotonic()))


def report_reader(base: str, stop: threading.Event, tally: Tally, every: float) -> None:
    """Log in as the demo ml_lead and read one report page after another."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(f"{base}/accounts/login/").read()
    csrf = next(cookie.value or "" for cookie in jar if cookie.name == "csrftoken")
    form = {"username": "lead", "password": DEMO_PASSWORD, "csrfmiddlewaretoken": csrf}
    browser.open(
        urllib.request.Request(
            f"{base}/accounts/login/",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Referer": base},
        )
    ).read()
    page = 0
    while not stop.wait(every):
        began = time.perf_counter()
        try:
            with browser.open(base + REPORT_PAGES[page % len(REPORT_PAGES)], timeout=60) as r:
                r.read()
            tally.add(time.perf_counter() - began, True)
        except OSError:
            tally.add(time.perf_counter() - began, False)
        page += 1


def memory(pid: int) -> tuple[float, float]:
    """RSS and USS in MB of a process and all its children (each page once in USS)."""
    rss = uss = 0.0
    try:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                info = process.memory_full_info()
            except psutil.NoSuchProcess:
                continue
            rss += info.rss / 2**20
            uss += info.uss / 2**20
    except psutil.NoSuchProcess:
        pass
    return rss, uss


def growth_per_hour(times: list[float], values: list[float], *, after: float) -> float:
    """Least-squares slope in units per hour, over the samples taken `after` s or later."""
    kept = [(t, v) for t, v in zip(times, values, strict=True) if t >= after]
    if len(kept) < 3:
        return float("nan")
    hours, amounts = zip(*kept, strict=True)
    return float(np.polyfit(np.array(hours) / 3600, np.array(amounts), 1)[0])


def percentiles(tally: Tally) -> str:
    if not tally.latencies:
        return "none"
    p50, p95, p99 = np.percentile(np.array(tally.latencies) * 1000, [50, 95, 99])
    return f"{len(tally.latencies):,} requests, p50 {p50:.0f} / p95 {p95:.0f} / p99 {p99:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=10.0, help="New items/s through the API.")
    parser.add_argument("--clients", type=int, default=2, help="API clients sharing the rate.")
    parser.add_argument("--inspectors", type=int, default=5)
    parser.add_argument("--think", type=float, default=1.0, help="Mean seconds between items.")
    parser.add_argument(
        "--report-every", type=float, default=5.0, help="Seconds between report pages; 0: none."
    )
    parser.add_argument("--sample-seconds", type=float, default=60.0)
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=5.0,
        help="Growth is fitted on the samples after this (caches and pools fill first).",
    )
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    parser.add_argument("--drop", action="store_true", help="Drop the database at the end.")
    args = parser.parse_args()

    services_start()
    database_create(args.database_url)
    var = django_setup(args.database_url, args.redis_url)

    from django.contrib.auth.models import Group, User
    from django.db import connection, connections

    from deployments.models import Prediction
    from inspections.models import Item, Judgment
    from inspections.services import api_token_create
    from shadowlab import roles
    from shadowlab.demo import demo_setup

    broker_purge()
    demo = demo_setup(items=200, log=lambda line: None)
    group = Group.objects.get(name=roles.INSPECTOR)
    for number in range(args.inspectors):
        user, _ = User.objects.get_or_create(username=f"bench-inspector-{number}")
        user.set_password(PASSWORD)
        user.save()
        user.groups.add(group)
    token = api_token_create(queue=demo.queue, name="soak")[1]
    versions = len(demo.models)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SHOW autovacuum")
        # Without autovacuum the planner keeps the statistics of the first 200 items while
        # tens of thousands arrive, and the report queries turn into nested loops over them
        # (36 s each at 18,000 items; the whole page under 2 s once analyzed). Production runs
        # with it on, so the soak does its part instead: ANALYZE at every sample.
        analyze_each_sample = cursor.fetchone()[0] != "on"
    connections.close_all()

    web = WebServer(var, workers=2, threads=4)
    port, base = web.port, web.base
    beat = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "shadowlab", "beat", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=web.env,
        stdout=(var / "beat.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workers = Workers(1, concurrency=2, nice=10, log_path=var / "workers.log")
    stop = threading.Event()
    tallies = {"intake": Tally(), "reports": Tally()}
    samples: dict[str, list[float]] = {"t": []}
    for name in ("web", "worker", "beat"):
        samples[f"{name} rss"], samples[f"{name} uss"] = [], []
    cast: list[Inspector] = []
    try:
        web.start()
        workers.start()
        threads = [
            threading.Thread(
                target=intake_client,
                args=(port, token, args.rate / args.clients, stop, tallies["intake"]),
                daemon=True,
            )
            for _ in range(args.clients)
        ]
        if args.report_every > 0:
            threads.append(
                threading.Thread(
                    target=report_reader,
                    args=(base, stop, tallies["reports"], args.report_every),
                    daemon=True,
                )
            )
        cast = [
            Inspector(base, f"bench-inspector-{n}", args.think, stop)
            for n in range(args.inspectors)
        ]
        for thread in [*threads, *cast]:
            thread.start()
        started = time.monotonic()
        end = started + args.minutes * 60
        print(
            f"soak: {args.minutes:g} min, {args.rate:g} items/s, {args.inspectors} inspectors, "
            f"reports every {args.report_every:g} s; logs in {var}",
            flush=True,
        )
        if analyze_each_sample:
            print("autovacuum is off on this server: the soak runs ANALYZE at every sample")
        print(
            f"{'min':>5} {'web RSS/USS MB':>16} {'worker RSS/USS MB':>18} {'beat USS':>9} "
            f"{'items':>7} {'scored':>8} {'judged':>7}"
        )
        while True:
            now = time.monotonic()
            samples["t"].append(now - started)
            for name, process in (("web", web), ("worker", workers.processes[0]), ("beat", beat)):
                rss, uss = memory(process.pid)
                samples[f"{name} rss"].append(rss)
                samples[f"{name} uss"].append(uss)
            items = Item.objects.count()
            scored = Prediction.objects.count()
            judged = Judgment.objects.count()
            if analyze_each_sample:
                with connection.cursor() as cursor:
                    cursor.execute("ANALYZE")
            connections.close_all()
            print(
                f"{(now - started) / 60:5.1f} "
                f"{samples['web rss'][-1]:8.0f}/{samples['web uss'][-1]:<7.0f} "
                f"{samples['worker rss'][-1]:9.0f}/{samples['worker uss'][-1]:<8.0f} "
                f"{samples['beat uss'][-1]:9.0f} {items:7,} {scored:8,} {judged:7,}",
                flush=True,
            )
            if now >= end:
                break
            time.sleep(max(0.0, min(args.sample_seconds, end - now)))
    finally:
        stop.set()
        for thread in cast:
            thread.join(timeout=15)
        workers.stop()
        web.stop()
        process_group_stop(beat, timeout=30)

    items = Item.objects.count()
    predictions = Prediction.objects.count()
    judgments = [t for inspector in cast for t in inspector.latencies]
    judge_tally = Tally(latencies=judgments, errors=sum(i.errors for i in cast))
    half = samples["t"][-1] / 2
    warmup = min(args.warmup_minutes * 60, half)
    rows = [
        ("duration", f"{samples['t'][-1] / 60:.1f} min, {len(samples['t'])} samples"),
        (
            "growth fitted",
            f"least squares over the samples from minute {warmup / 60:.1f} on; "
            "and over the second half alone (a leak keeps its slope, a high-water mark levels)",
        ),
        ("stack", "gunicorn 2 x 4 threads, 1 worker (concurrency 2), beat; PostgreSQL + Redis"),
    ]
    for name in ("web", "worker", "beat"):
        for measure in ("rss", "uss"):
            values = samples[f"{name} {measure}"]
            rows.append(
                (
                    f"{name} {measure.upper()}",
                    f"{values[0]:.0f} -> {values[-1]:.0f} MB, growth "
                    f"{growth_per_hour(samples['t'], values, after=warmup):+.1f} MB/h, "
                    f"second half {growth_per_hour(samples['t'], values, after=half):+.1f} MB/h",
                )
            )
    rows += [
        ("intake POSTs", f"{percentiles(tallies['intake'])}, {tallies['intake'].errors} errors"),
        ("judgments", f"{percentiles(judge_tally)}, {judge_tally.errors} errors"),
        ("report pages", f"{percentiles(tallies['reports'])}, {tallies['reports'].errors} errors"),
        ("items / predictions", f"{items:,} / {predictions:,} ({versions} versions in shadow)"),
        ("unscored at the end", f"{items * versions - predictions:,} predictions missing"),
    ]
    print()
    print(table(rows, "soak"))
    if args.drop:
        connections.close_all()
        database_drop(args.database_url)


if __name__ == "__main__":
    main()
