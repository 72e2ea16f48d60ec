"""Load: 50 inspectors and 5 API clients for 5 minutes against gunicorn, PostgreSQL and Redis.

Starts gunicorn (3 processes x 4 threads) and one Celery worker on the benchmark database,
loads a backlog of items and lets the worker score it, then runs Locust headless on
loopback (bench/locustfile.py): inspectors sign in and judge through the inspect screen with
a 1-3 s pause, API clients submit items with their queue tokens and read some back. Prints
requests/s, p50/p95/p99 per request kind, failures, and the scoring lag of the items the API
clients submitted (arrival to shadow prediction, every model in shadow).

    .venv/bin/python bench/load.py [--inspectors 50] [--api-clients 5] [--minutes 5]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import (
    DEFAULT_DATABASE,
    DEFAULT_REDIS,
    ROOT,
    WebServer,
    Workers,
    broker_purge,
    database_create,
    django_setup,
    services_start,
    table,
    tables_empty,
)

PASSWORD = "load-inspector-password"  # noqa: S105 - users of a throwaway database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inspectors", type=int, default=50)
    parser.add_argument("--api-clients", type=int, default=5)
    parser.add_argument("--api-rate", type=float, default=4.0, help="Requests/s per API client.")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    args = parser.parse_args()

    services_start()
    database_create(args.database_url)
    var = django_setup(args.database_url, args.redis_url)

    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group, User
    from django.db import connection

    from deployments.models import Deployment, Prediction
    from inspections.models import Item
    from inspections.services import api_token_create, items_create_bulk
    from shadowlab import digits, roles
    from shadowlab.demo import demo_setup

    tables_empty()
    broker_purge()
    demo = demo_setup(items=0, log=lambda line: None)
    group = Group.objects.get(name=roles.INSPECTOR)
    hashed = make_password(PASSWORD)
    for number in range(args.inspectors):
        user, _ = User.objects.get_or_create(username=f"load-inspector-{number}")
        user.password = hashed
        user.save()
        user.groups.add(group)
    tokens = [
        api_token_create(queue=demo.queue, name=f"load-{n}")[1] for n in range(args.api_clients)
    ]
    features = digits.digits_split().holdout_x
    # Enough waiting items that no inspector runs out: 2 s per judgment on average.
    backlog = int(args.inspectors * args.minutes * 60 / 2 * 1.5) + 500
    items_create_bulk(
        queue=demo.queue,
        rows=((f"seed-{n}", features[n % len(features)].tolist()) for n in range(backlog)),
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    versions = Deployment.objects.filter(queue=demo.queue).count()

    # Keep-alive longer than the clients' pauses, as behind a load balancer: otherwise a client
    # sends on a connection the server is closing that instant, and sees a reset.
    web = WebServer(var, workers=3, threads=4, options=("--keep-alive", "10"))
    base = web.base
    workers = Workers(1, nice=10, log_path=var / "workers.log")
    stats_prefix = var / "locust"
    try:
        web.start()
        workers.start()
        print(f"scoring the backlog of {backlog:,} items…", flush=True)
        while Prediction.objects.count() < backlog * versions:
            time.sleep(1)
        users = args.inspectors + args.api_clients
        print(
            f"{args.inspectors} inspectors and {args.api_clients} API clients for "
            f"{args.minutes:g} min…",
            flush=True,
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(ROOT / "bench" / "locustfile.py"),
                "--headless",
                "--host",
                base,
                "--users",
                str(users),
                "--spawn-rate",
                str(max(1, users // 10)),
                "--run-time",
                f"{int(args.minutes * 60)}s",
                "--csv",
                str(stats_prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "LOAD_PASSWORD": PASSWORD,
                "LOAD_TOKENS": ",".join(tokens),
                "LOAD_ROWS": json.dumps(features[:200].tolist()),
                "LOAD_INSPECTORS": str(args.inspectors),
                "LOAD_API_CLIENTS": str(args.api_clients),
                "LOAD_API_RATE": str(args.api_rate),
            },
            check=False,
        )
        submitted = Item.objects.filter(external_id__startswith="load-").count()
        # Let the worker finish what arrived in the last seconds before measuring the lag.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            scored = Prediction.objects.filter(item__external_id__startswith="load-").count()
            if scored >= submitted * versions:
                break
            time.sleep(1)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP (
                    ORDER BY EXTRACT(EPOCH FROM p.created_at - i.received_at))
                FROM deployments_prediction p JOIN inspections_item i ON i.id = p.item_id
                WHERE i.external_id LIKE 'load-%%'
                """
            )
            lag = cursor.fetchone()[0] or [float("nan"), float("nan")]
    finally:
        workers.stop()
        web.stop()

    with open(f"{stats_prefix}_stats.csv", newline="") as handle:
        stats = list(csv.DictReader(handle))
    rows: list[tuple[str, str]] = [
        ("server", "gunicorn 3 processes x 4 threads, 1 Celery worker, PostgreSQL + Redis"),
        (
            "load",
            f"{args.inspectors} inspectors (1-3 s per item), {args.api_clients} API clients "
            f"({args.api_rate:g} req/s each), {args.minutes:g} min, loopback",
        ),
    ]
    for row in stats:
        name = "all requests" if row["Name"] == "Aggregated" else f"{row['Type']} {row['Name']}"
        rows.append(
            (
                name,
                f"{int(row['Request Count']):,} requests ({float(row['Requests/s']):.1f}/s), "
                f"{int(row['Failure Count'])} failures, p50 / p95 / p99 "
                f"{row['50%']} / {row['95%']} / {row['99%']} ms",
            )
        )
    scored = Prediction.objects.filter(item__external_id__startswith="load-").count()
    rows.append(
        (
            "API items scored in shadow",
            f"{scored:,} predictions of {submitted:,} items x {versions} versions; "
            f"lag p50 {lag[0]:.2f} s, p95 {lag[1]:.2f} s",
        )
    )
    print()
    print(table(rows, "load: inspectors and API clients"))


if __name__ == "__main__":
    main()
