"""Intake latency of model-routed against inspector-routed items, and batch intake throughput.

Starts gunicorn on a PostgreSQL database of its own and a Celery worker on Redis, makes the
demo FP32 model live on the digits queue (its INT8 variant stays in shadow) and creates a
second queue whose items inspectors decide, with copies of both versions in shadow, so that
both queues hand every item to the same shadow scoring and differ in routing alone.

- **latency**: API clients POST single items at a steady offered rate, alternating between
  the two queues request by request, so both see the same machine; p50/p95/p99 of each.
- **batch**: `items:batch` requests of 1,000 items to each queue, one at a time (as many
  connections as `--batch-clients`), against the raw insert rate of the same rows (the Item
  and Decision rows a batch stores, bulk-inserted in one transaction per 1,000 with nothing
  else done) from as many processes; rounds alternate the two. One at a time by default:
  two connections may share one gunicorn process and its interpreter lock, which two raw
  insert processes never do. The worker is stopped for this phase: the shadow scoring it
  would do is measured by shadow_throughput.py.

    .venv/bin/python bench/live_latency.py [--rate 50] [--seconds 30] [--batches 10] [--rounds 3]

Its database (shadowlab_bench_routing) is dropped and created afresh by each run;
`--drop` drops it at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import (
    WebServer,
    Workers,
    broker_purge,
    database_create,
    database_drop,
    django_setup,
    services_start,
    table,
    tables_empty,
)

# A database and a Redis database of this bench's own, so that other benchmarks run side by
# side are not purged or truncated by this one.
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/shadowlab_bench_routing"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
MODEL_QUEUE, HUMAN_QUEUE = "digits", "bench-inspectors"


@dataclass
class Tally:
    """Latencies (seconds) of one condition, and what the answers said."""

    latencies: list[float] = field(default_factory=list)
    routes: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    late: int = 0  # requests sent more than 10 ms after their scheduled time


def _connection(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def _post(
    conn: http.client.HTTPConnection, path: str, token: str, body: bytes
) -> tuple[int, bytes]:
    conn.request(
        "POST",
        path,
        body=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    response = conn.getresponse()
    return response.status, response.read()


def steady_load(
    *,
    port: int,
    tokens: dict[str, str],
    rows: list[list[float]],
    rate: float,
    seconds: float,
    senders: int,
    prefix: str,
) -> dict[str, Tally]:
    """Offer `rate` single-item POSTs per second, alternating queues; return a tally per queue."""
    tallies = {MODEL_QUEUE: Tally(), HUMAN_QUEUE: Tally()}
    lock = threading.Lock()
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2

    def sender(offset: int) -> None:
        conn = _connection(port)
        for index in range(offset, total, senders):
            slug = MODEL_QUEUE if index % 2 == 0 else HUMAN_QUEUE
            due = start + index / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            body = json.dumps(
                {"external_id": f"{prefix}-{index}", "features": rows[index % len(rows)]}
            ).encode()
            sent = time.perf_counter()
            try:
                status, answer = _post(conn, f"/api/v1/queues/{slug}/items", tokens[slug], body)
            except OSError:
                conn.close()
                conn = _connection(port)
                with lock:
                    tallies[slug].errors += 1
                continue
            took = time.perf_counter() - sent
            with lock:
                tally = tallies[slug]
                if status != 201:
                    tally.errors += 1
                    continue
                tally.latencies.append(took)
                route = json.loads(answer)["route"]
                tally.routes[route] = tally.routes.get(route, 0) + 1
                tally.late += sent - due > 0.010
        conn.close()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return tallies


def batch_load(
    *,
    port: int,
    token: str,
    slug: str,
    rows: list[list[float]],
    batches: int,
    clients: int,
    prefix: str,
) -> tuple[int, float, int]:
    """Send `batches` requests of 1,000 items over `clients` connections.

    Return the items created, the seconds it took and the requests that failed.
    """
    created = errors = 0
    lock = threading.Lock()

    # Bodies are encoded before the clock starts: the client's JSON work is not the server's.
    bodies = [
        json.dumps(
            {
                "items": [
                    {
                        "external_id": f"{prefix}-{number}-{n}",
                        "features": rows[(number + n) % len(rows)],
                    }
                    for n in range(1000)
                ]
            }
        ).encode()
        for number in range(batches)
    ]

    def client(offset: int) -> None:
        nonlocal created, errors
        conn = _connection(port)
        conn.timeout = 60
        for number in range(offset, batches, clients):
            status, answer = _post(
                conn, f"/api/v1/queues/{slug}/items:batch", token, bodies[number]
            )
            with lock:
                if status == 200:
                    created += json.loads(answer)["created"]
                else:
                    errors += 1
        conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return created, time.perf_counter() - started, errors


def _raw_batches(task: tuple[str, list[list[float]], list[str], bool]) -> int:
    """Bulk-insert 1,000-row batches of items (and decisions) in a pool process; return rows."""
    from django.db import transaction
    from django.utils import timezone

    from deployments.models import Decision, Deployment
    from inspections.models import Item, Queue

    queue_slug, rows, prefixes, decided = task
    queue = Queue.objects.get(slug=queue_slug)
    live = (
        Deployment.objects.filter(queue=queue, role="live").select_related("model_version").first()
    )
    for prefix in prefixes:
        now = timezone.now()
        items = [
            Item(
                queue=queue,
                external_id=f"{prefix}-{n}",
                features=rows[n % len(rows)],
                received_at=now,
                route="model" if decided else "human",
                judgments_needed=0 if decided else 1,
                human_status="not_needed" if decided else "pending",
            )
            for n in range(1000)
        ]
        with transaction.atomic():
            created = Item.objects.bulk_create(items)
            if decided and live is not None:
                Decision.objects.bulk_create(
                    Decision(
                        item=item,
                        model_version=live.model_version,
                        role="live",
                        outcome="decided",
                        label="3",
                        confidence=0.97,
                        latency_ms=0.4,
                        created_at=now,
                    )
                    for item in created
                )
    return 1000 * len(prefixes)


def raw_insert(
    *,
    pool: Any,
    queue_slug: str,
    rows: list[list[float]],
    batches: int,
    clients: int,
    prefix: str,
    decided: bool,
) -> tuple[int, float]:
    """Insert what `batches` batches store, over `clients` processes; return rows and seconds."""
    names = [f"{prefix}-{number}" for number in range(batches)]
    tasks = [(queue_slug, rows, names[n::clients], decided) for n in range(clients)]
    started = time.perf_counter()
    inserted = sum(pool.map(_raw_batches, tasks))
    return inserted, time.perf_counter() - started


def server_times(path: Path, since_line: int) -> dict[str, list[float]]:
    """Return the server-side seconds of single-item POSTs per queue, from the access log."""
    times: dict[str, list[float]] = {MODEL_QUEUE: [], HUMAN_QUEUE: []}
    lines = path.read_text().splitlines()[since_line:]
    for line in lines:
        method, url, status, micros = line.split()
        for slug in times:
            if method == "POST" and url == f"/api/v1/queues/{slug}/items" and status == "201":
                times[slug].append(int(micros) / 1e6)
    return times


def _percentiles(latencies: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.array(latencies) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="Offered POSTs/s, both queues.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Length of the latency phase.")
    parser.add_argument("--senders", type=int, default=8, help="Client threads.")
    parser.add_argument(
        "--batches", type=int, default=10, help="1,000-item batches per queue and round."
    )
    parser.add_argument("--rounds", type=int, default=3, help="Alternating batch/raw rounds.")
    parser.add_argument("--batch-clients", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--drop", action="store_true", help="Drop the database at the end.")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    args = parser.parse_args()

    services_start()
    database_create(args.database_url)
    var = django_setup(args.database_url, args.redis_url)

    from django.db import connection, connections

    from deployments import transitions
    from deployments.model_files import model_file_local
    from deployments.registry import model_version_register, reference_data
    from deployments.rollout import rollout_move
    from deployments.services import deployment_shadow_start
    from inspections.services import api_token_create, queue_create
    from shadowlab import digits
    from shadowlab.demo import demo_setup

    tables_empty()
    broker_purge()
    demo = demo_setup(items=0, log=lambda line: None)
    fp32 = demo.models[0]
    for move, share in (
        (transitions.CANARY_START, 0.05),
        (transitions.LIVE_SWITCH, None),
    ):
        rollout_move(model_version=fp32, move=move, actor=None, share=share)
    human = queue_create(
        name="Digits, inspectors only",
        slug=HUMAN_QUEUE,
        labels=digits.LABELS,
        input_width=digits.WIDTH,
        image_shape=digits.IMAGE_SHAPE,
    )
    # The inspectors' queue has as many versions in shadow as the digits queue has deployed
    # (live FP32, INT8 in shadow), so both send their items to the same shadow scoring and
    # differ only in routing: before a model went live, its queue had it in shadow too.
    for number, source in enumerate(demo.models, start=1):
        copy = model_version_register(
            queue=human,
            name="bench-shadow",
            version=str(number),
            onnx_path=model_file_local(source.onnx_file, sha256=source.sha256),
            reference=reference_data(source),
        )
        deployment_shadow_start(model_version=copy, actor=None)
    tokens = {
        MODEL_QUEUE: api_token_create(queue=demo.queue, name="bench")[1],
        HUMAN_QUEUE: api_token_create(queue=human, name="bench")[1],
    }
    rows = [[float(v) for v in row] for row in digits.digits_split().holdout_x]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connections.close_all()

    web = WebServer(
        var,
        workers=args.web_workers,
        threads=args.web_threads,
        # Server-side time of each request (microseconds), to tell it from the client's.
        options=(
            *("--access-logfile", str(var / "access.log")),
            *("--access-logformat", "%(m)s %(U)s %(s)s %(D)s"),
        ),
    )
    port = web.port
    # Shadow scoring of every new item (the live version and the INT8 shadow) runs beside
    # the web server at a lower priority, as run_local and docker-compose.yml set it up.
    workers = Workers(1, nice=10, log_path=var / "workers.log")
    try:
        web.start()
        workers.start()
        print(f"warm-up: {args.rate:.0f} POSTs/s for 5 s…", flush=True)
        steady_load(
            port=port,
            tokens=tokens,
            rows=rows,
            rate=args.rate,
            seconds=5,
            senders=args.senders,
            prefix="warm",
        )
        print(f"latency: {args.rate:.0f} POSTs/s for {args.seconds:.0f} s…", flush=True)
        logged = len((var / "access.log").read_text().splitlines())
        tallies = steady_load(
            port=port,
            tokens=tokens,
            rows=rows,
            rate=args.rate,
            seconds=args.seconds,
            senders=args.senders,
            prefix="run",
        )
        workers.stop()
        server = server_times(var / "access.log", logged)
        # Raw inserts run in a pool of as many processes as there are batch clients, so both
        # sides write in parallel alike; rounds alternate so both see the same machine.
        connections.close_all()
        pool = multiprocessing.get_context("fork").Pool(args.batch_clients)
        # Per queue: items (or rows), seconds and failed requests, summed over the rounds.
        batch: dict[str, list[float]] = {slug: [0, 0.0, 0] for slug in (MODEL_QUEUE, HUMAN_QUEUE)}
        raw: dict[str, list[float]] = {slug: [0, 0.0] for slug in (MODEL_QUEUE, HUMAN_QUEUE)}
        print(f"batch: {args.rounds} rounds of {args.batches} x 1,000 items per queue…", flush=True)
        for round_number in range(args.rounds):
            for slug in (MODEL_QUEUE, HUMAN_QUEUE):
                created, seconds, errors = batch_load(
                    port=port,
                    token=tokens[slug],
                    slug=slug,
                    rows=rows,
                    batches=args.batches,
                    clients=args.batch_clients,
                    prefix=f"batch{round_number}",
                )
                batch[slug] = [
                    batch[slug][0] + created,
                    batch[slug][1] + seconds,
                    batch[slug][2] + errors,
                ]
                inserted, seconds = raw_insert(
                    pool=pool,
                    queue_slug=slug,
                    rows=rows,
                    batches=args.batches,
                    clients=args.batch_clients,
                    prefix=f"raw{round_number}",
                    decided=slug == MODEL_QUEUE,
                )
                raw[slug] = [raw[slug][0] + inserted, raw[slug][1] + seconds]
        pool.close()
        pool.join()
    finally:
        workers.stop()
        web.stop()
    broker_purge()
    from django.db.models import Count

    from deployments.models import Decision
    from inspections.models import Item

    # Every item the model decided has its Decision row (one statement wrote both).
    model_items = Item.objects.filter(queue=demo.queue, route="model")
    undecided = model_items.filter(decision__isnull=True).count()
    fallbacks = list(
        Decision.objects.filter(outcome="failed")
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by("-n")
    )

    out: list[tuple[str, str]] = [
        (
            "server",
            f"gunicorn, {args.web_workers} processes x {args.web_threads} threads, "
            "PostgreSQL + Redis",
        ),
        ("offered", f"{args.rate:.0f} POSTs/s for {args.seconds:.0f} s, queues alternating"),
    ]
    percentiles = {}
    for slug, name in ((MODEL_QUEUE, "model-routed"), (HUMAN_QUEUE, "inspector-routed")):
        tally = tallies[slug]
        percentiles[slug] = _percentiles(tally.latencies)
        p50, p95, p99 = percentiles[slug]
        routes = ", ".join(f"{count:,} {route}" for route, count in sorted(tally.routes.items()))
        out.append(
            (
                f"{name}: requests",
                f"{len(tally.latencies):,} ({routes}), {tally.errors} errors, "
                f"{tally.late} sent late",
            )
        )
        out.append((f"{name}: p50 / p95 / p99", f"{p50:.1f} / {p95:.1f} / {p99:.1f} ms"))
        s50, s95, s99 = _percentiles(server[slug])
        out.append(("  in the server", f"{s50:.1f} / {s95:.1f} / {s99:.1f} ms"))
    out.append(
        (
            "model-routed items stored",
            f"{model_items.count():,}, {undecided} without a decision row, "
            f"{Decision.objects.count():,} decisions",
        )
    )
    out.append(
        (
            "fell back to inspectors",
            ", ".join(f"{n:,} ({reason})" for reason, n in fallbacks) or "none",
        )
    )
    model, human_p = percentiles[MODEL_QUEUE], percentiles[HUMAN_QUEUE]
    out.append(
        ("p95 model / inspectors", f"{model[1] / human_p[1]:.2f}x (target <= 1.2x, <= 30 ms)")
    )
    out.append(("p99 model / inspectors", f"{model[2] / human_p[2]:.2f}x"))
    for slug, name in ((MODEL_QUEUE, "model-routed"), (HUMAN_QUEUE, "inspector-routed")):
        total_items, total_seconds, failed = batch[slug]
        rate = total_items / total_seconds
        raw_items, raw_seconds = raw[slug]
        raw_rate = raw_items / raw_seconds
        out.append(
            (
                f"batch {name}",
                f"{total_items:,.0f} items in {total_seconds:.1f} s = {rate:,.0f} items/s, "
                f"{failed:.0f} errors",
            )
        )
        what = "items + decisions" if slug == MODEL_QUEUE else "items"
        out.append((f"  raw insert, same rows ({what})", f"{raw_rate:,.0f} items/s"))
        out.append(("  batch / raw", f"{rate / raw_rate:.0%} (target >= 50%)"))
    print()
    print(table(out, "intake latency and batch throughput"))
    if args.drop:
        database_drop(args.database_url)


if __name__ == "__main__":
    main()
