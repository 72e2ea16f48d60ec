"""End-to-end shadow scoring throughput and lag on PostgreSQL + Redis with real workers.

Streams items through the bulk intake service at a steady offered rate while N Celery worker
processes score them with the demo model, then reports scored items/s and the lag from an
item's arrival to its prediction being stored. In the same run it measures the two ceilings
the pipeline sits on: the raw database insert rate of the same Prediction rows (the very
statement the workers use, with no other work) and raw ONNX Runtime rows/s.

    .venv/bin/python bench/shadow_throughput.py [--items 100000] [--rate 5000] [--workers 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import (
    DEFAULT_DATABASE,
    DEFAULT_REDIS,
    Workers,
    broker_purge,
    database_create,
    django_setup,
    services_start,
    table,
    tables_empty,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument(
        "--rate", type=float, default=5000, help="Offered items/s in the lag phase."
    )
    parser.add_argument("--workers", type=int, default=1, help="Worker processes.")
    parser.add_argument("--models", choices=["fp32", "both"], default="fp32")
    parser.add_argument("--pool", choices=["prefork", "solo"], default="prefork")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    args = parser.parse_args()

    services_start()
    database_create(args.database_url)
    var = django_setup(args.database_url, args.redis_url)

    import numpy as np
    from django.db import connection
    from django.db.models import Max, Min
    from django.utils import timezone

    from deployments.inference import Outcome
    from deployments.models import Deployment, Prediction
    from deployments.prediction_insert import predictions_insert
    from deployments.scoring_cache import model_runner
    from deployments.services import deployment_retire, deployment_shadow_start
    from inspections.models import Item, Queue
    from inspections.services import items_create_bulk, queue_create
    from shadowlab import digits
    from shadowlab.demo import demo_setup

    print("setting up the demo model and an empty database…", flush=True)
    tables_empty()
    broker_purge()
    demo = demo_setup(items=0, log=lambda line: None)
    fp32, int8 = demo.models
    versions = [fp32] if args.models == "fp32" else [fp32, int8]
    for version in (fp32, int8):
        if version in versions:
            deployment_shadow_start(model_version=version, actor=None)
        else:
            deployment_retire(deployment=Deployment.objects.get(model_version=version), actor=None)
    queue = demo.queue
    features = digits.digits_split().holdout_x
    from django.conf import settings

    batch = settings.SHADOWLAB["SCORING_BATCH_SIZE"]

    # Ceiling 1: ONNX Runtime alone, on batches of the scoring batch size.
    runner = model_runner(fp32)
    rows = np.resize(features, (batch, features.shape[1])).astype(np.float32)
    runner.predict(rows)
    started, scored = time.perf_counter(), 0
    while time.perf_counter() - started < 2:
        runner.predict(rows)
        scored += batch
    ort_rate = scored / (time.perf_counter() - started)

    # Ceiling 2: the database writing the same Prediction rows with the same statement.
    raw_queue = Queue.objects.filter(slug="bench-raw").first() or queue_create(
        name="bench raw insert", slug="bench-raw", labels=digits.LABELS, input_width=64
    )
    raw_rows = min(args.items, 50_000)
    items_create_bulk(
        queue=raw_queue,
        rows=((f"raw-{n}", features[n % len(features)].tolist()) for n in range(raw_rows)),
    )
    raw_ids = list(Item.objects.filter(queue=raw_queue).order_by("id").values_list("id", flat=True))
    probabilities = runner.predict(rows).probabilities
    template = [
        Outcome(
            0,
            label="3",
            probabilities=np.round(p.astype(float), 6).tolist(),
            confidence=float(p.max()),
            latency_ms=0.002,
        )
        for p in probabilities
    ]
    started = time.perf_counter()
    for start in range(0, len(raw_ids), batch):
        chunk = raw_ids[start : start + batch]
        outcomes = [
            Outcome(item_id, t.label, t.probabilities, t.confidence, t.latency_ms)
            for item_id, t in zip(chunk, template, strict=False)
        ]
        predictions_insert(model_version=fp32, outcomes=outcomes, attempts={})
    insert_rate = len(raw_ids) / (time.perf_counter() - started)
    Prediction.objects.filter(item__queue=raw_queue).delete()
    Item.objects.filter(queue=raw_queue).delete()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE deployments_prediction")

    def stream(prefix: str, rate: float) -> float:
        """Send args.items items at the offered rate (0: as fast as intake goes); return seconds."""
        rng = random.Random(0)
        chunk = args.items if rate <= 0 else max(1, round(rate / 20))
        chunk = min(chunk, 2000)
        started = time.perf_counter()
        sent = 0
        while sent < args.items:
            size = min(chunk, args.items - sent)
            items_create_bulk(
                queue=queue,
                rows=(
                    (f"{prefix}{sent + n}", features[(sent + n) % len(features)].tolist())
                    for n in range(size)
                ),
                rng=rng,
            )
            sent += size
            if rate > 0:
                pause = started + sent / rate - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
        return time.perf_counter() - started

    def wait_for(expected: int) -> int:
        # Poll gently: a count every half second is not free for the database being measured.
        deadline = time.monotonic() + 240
        done = Prediction.objects.count()
        while done < expected and time.monotonic() < deadline:
            time.sleep(0.5)
            done = Prediction.objects.count()
        return done

    def lag_percentiles(prefix: str) -> tuple[float, float, float]:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
                    ORDER BY EXTRACT(EPOCH FROM p.created_at - i.received_at))
                FROM deployments_prediction p JOIN inspections_item i ON i.id = p.item_id
                WHERE i.external_id LIKE %s
                """,
                [prefix + "%"],
            )
            return tuple(cursor.fetchone()[0])  # type: ignore[return-value]

    expected = args.items * len(versions)
    workers = Workers(args.workers, pool=args.pool, log_path=var / "workers.log")
    try:
        # Phase 1, capacity: a backlog of items is waiting when the workers start.
        print(f"capacity: queueing {args.items:,} items before the workers start…", flush=True)
        stream("backlog-", 0)
        workers.start()
        ready_at = timezone.now()
        done = wait_for(expected)
        drained_at = Prediction.objects.aggregate(last=Max("created_at"))["last"]
        drain_seconds = (drained_at - ready_at).total_seconds()
        capacity_predictions = done / drain_seconds
        # Phase 2, lag: items arrive at the offered rate while the workers keep up.
        print(f"lag: streaming {args.items:,} items at {args.rate:,.0f} items/s…", flush=True)
        load_seconds = stream("steady-", args.rate)
        steady_done = wait_for(2 * expected) - done
        window = Item.objects.filter(queue=queue, external_id__startswith="steady-").aggregate(
            first=Min("received_at")
        )
        last = Prediction.objects.filter(item__external_id__startswith="steady-").aggregate(
            last=Max("created_at")
        )["last"]
        steady_seconds = (last - window["first"]).total_seconds()
        p50, p95, p99 = lag_percentiles("steady-")
    finally:
        workers.stop()

    per_item = len(versions)
    print()
    print(
        table(
            [
                ("database", f"PostgreSQL {connection.pg_version // 10000}"),  # type: ignore[attr-defined]
                ("broker", args.redis_url),
                ("worker processes", f"{args.workers} ({args.pool} pool, one process each)"),
                ("shadow model versions", ", ".join(v.key for v in versions)),
                ("items per phase", f"{args.items:,}"),
                ("capacity: backlog drained", f"{done:,} predictions in {drain_seconds:.1f} s"),
                (
                    "capacity: end-to-end scored",
                    f"{capacity_predictions / per_item:,.0f} items/s "
                    f"({capacity_predictions:,.0f} predictions/s)",
                ),
                ("raw bulk insert, same rows", f"{insert_rate:,.0f} rows/s"),
                ("  capacity / raw insert", f"{capacity_predictions / insert_rate:.0%}"),
                ("scoring batch size", f"{batch} items"),
                (f"raw ONNX Runtime (batch {batch})", f"{ort_rate:,.0f} rows/s"),
                ("  capacity / raw ONNX Runtime", f"{capacity_predictions / ort_rate:.2%}"),
                ("lag: offered rate", f"{args.rate:,.0f} items/s"),
                ("lag: intake achieved", f"{args.items / load_seconds:,.0f} items/s"),
                (
                    "lag: end-to-end scored",
                    f"{steady_done / per_item / steady_seconds:,.0f} items/s",
                ),
                ("lag: p50 / p95 / p99", f"{p50:.3f} s / {p95:.3f} s / {p99:.3f} s"),
            ],
            "shadow scoring throughput",
        )
    )
    if done < expected or steady_done < expected:
        sys.exit("not every item was scored within the time limit")


if __name__ == "__main__":
    main()
