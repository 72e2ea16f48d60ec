"""Time from a model degrading to its automatic rollback being recorded, with real beat and worker.

A writer in this process plays intake and inspectors: model-routed items at a steady rate,
a Decision per item, 10% of the decided items in the audit sample, judged at once. Celery
beat runs the rollback monitor every ``--interval`` seconds on a real worker. Two kinds of
degradation, each in its own queue and round:

- **worse canary**: a canary that agrees with inspectors on 60% of the audit items (the
  live version beside it on 97%) from its first item. The minimum sample is the policy's
  100 judged audit items.
- **error spike**: a live version with a standby serves healthily for a warm-up, then
  fails half of its items (as a dependency timing out would); the window already holds
  the warm-up's healthy decisions, so it needs some failures before they are evidence.

For each round: when the degradation started, when the window first held the minimum
sample, when the figures written so far first made a breach certain at the monitor's
bounds ("evidence", the earliest a look could roll back), and when the rollback was
recorded (its audit event). The target is a rollback within two monitor intervals of the
evidence. Then the cost of one look at a full window (20,000 decisions with drift).

PostgreSQL and Redis by default (database ``shadowlab_bench_rollback``, Redis db 11, both
only ever holding this benchmark's data); ``--embedded`` uses SQLite and the file broker in
a temporary folder instead.

    .venv/bin/python bench/rollback_time.py [--interval 5] [--rounds 3] [--rate 200] [--embedded]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import (
    ROOT,
    Workers,
    broker_purge,
    database_create,
    process_group_stop,
    services_start,
    table,
)

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/shadowlab_bench_rollback"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
TICK_SECONDS = 0.1
AUDIT_SHARE = 0.10
WARM_UP_SECONDS = 20.0


def _embedded_setup() -> Path:
    """Point Django at a fresh SQLite file and file broker in a temporary folder; migrate."""
    var = Path(tempfile.mkdtemp(prefix="shadowlab-rollback-bench-"))
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ.update(
        SHADOWLAB_VAR_DIR=str(var),
        DJANGO_SETTINGS_MODULE="shadowlab.settings",
        LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return var


def _postgres_setup(database_url: str, redis_url: str) -> Path:
    from bench._stack import django_setup

    services_start()
    database_create(database_url)
    return django_setup(database_url, redis_url)


class Beat:
    """A `celery beat` process on the benchmark database and broker."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "shadowlab", "beat", "--loglevel", "INFO"],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        process_group_stop(self.process)


@dataclass
class Stream:
    """What the writer has written for one version: counts the monitor's checks read."""

    version: Any
    role: str
    share: float
    agreement: float
    failure: float = 0.0
    decisions: int = 0
    failed: int = 0
    audited: int = 0
    agreed: int = 0


class Writer:
    """Writes items, decisions and judgments for a queue's versions at a steady rate."""

    def __init__(self, queue: Any, inspector: Any, rate: float, rng: np.random.Generator) -> None:
        self.queue = queue
        self.inspector = inspector
        self.rate = rate
        self.rng = rng
        self.serial = 0
        self.labels = [str(label) for label in queue.labels]

    def write(self, streams: list[Stream], items: int, at: datetime) -> None:
        from deployments.models import Decision
        from inspections.models import Item, Judgment

        plan: list[tuple[Stream, bool, bool, bool]] = []
        for stream in streams:
            count = int(self.rng.binomial(items, stream.share))
            for _ in range(count):
                failed = bool(self.rng.random() < stream.failure)
                audit = not failed and bool(self.rng.random() < AUDIT_SHARE)
                agree = bool(self.rng.random() < stream.agreement)
                plan.append((stream, failed, audit, agree))
        rows = []
        for _, _, audit, _ in plan:
            self.serial += 1
            rows.append(
                Item(
                    queue=self.queue,
                    external_id=f"b{self.serial}",
                    features=[0.0] * self.queue.input_width,
                    received_at=at,
                    route=Item.Route.MODEL,
                    audit_sample=audit,
                    judgments_needed=1 if audit else 0,
                    judgment_count=1 if audit else 0,
                    human_status=Item.HumanStatus.COMPLETE
                    if audit
                    else Item.HumanStatus.NOT_NEEDED,
                )
            )
        created = Item.objects.bulk_create(rows)
        decisions, judgments = [], []
        for item, (stream, failed, audit, agree) in zip(created, plan, strict=True):
            label = self.labels[item.pk % len(self.labels)]
            decisions.append(
                Decision(
                    item=item,
                    model_version=stream.version,
                    role=stream.role,
                    outcome=Decision.Outcome.FAILED if failed else Decision.Outcome.DECIDED,
                    label="" if failed else label,
                    confidence=None if failed else 0.9,
                    latency_ms=float(self.rng.uniform(2.0, 8.0)),
                    reason="model timed out" if failed else "",
                    created_at=at,
                )
            )
            stream.decisions += 1
            stream.failed += failed
            if audit:
                human = label if agree else self.labels[(self.labels.index(label) + 1) % 10]
                judgments.append(
                    Judgment(item=item, inspector=self.inspector, label=human, seconds_spent=3.0)
                )
                stream.audited += 1
                stream.agreed += agree
        Decision.objects.bulk_create(decisions)
        Judgment.objects.bulk_create(judgments)


@dataclass
class RoundResult:
    kind: str
    started: datetime
    minimum_at: datetime | None
    evidence_at: datetime | None
    recorded_at: datetime | None
    looks_missed: int


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def _run_round(
    kind: str, number: int, *, rate: float, inspector: Any, timeout: float
) -> RoundResult:
    from django.utils import timezone

    from analytics.gate.policy import gate_policy_current
    from deployments.models import AuditEvent, Deployment, ModelVersion, MonitorCheck
    from deployments.monitor import monitor_thresholds
    from deployments.monitor_rules import BREACH, WindowFigures, agreement_check, error_rate_check
    from deployments.rollout import rollout_rollback
    from inspections.services import queue_create
    from shadowlab import digits

    queue = queue_create(
        name=f"Bench {kind} {number}",
        slug=f"bench-{kind}-{number}",
        labels=digits.LABELS,
        input_width=digits.WIDTH,
    )
    thresholds = monitor_thresholds(gate_policy_current(queue=queue))

    def version(tag: str) -> ModelVersion:
        return ModelVersion.objects.create(
            queue=queue,
            name=f"bench-{kind}-{number}",
            version=tag,
            onnx_file=f"models/bench-{kind}-{number}-{tag}.onnx",
            sha256="0" * 64,
            size_bytes=1,
            labels=list(queue.labels),
            input_width=queue.input_width,
            input_name="input",
            probability_output="probabilities",
        )

    def deploy(model: ModelVersion, role: str, share: float) -> None:
        Deployment.objects.create(
            queue=queue,
            model_version=model,
            role=role,
            traffic_share=share,
            started_at=timezone.now(),
        )

    rng = np.random.default_rng(number)
    writer = Writer(queue, inspector, rate, rng)
    if kind == "canary":
        live, degraded = version("1"), version("2")
        deploy(live, "live", 1.0)
        deploy(degraded, "canary", 0.5)
        healthy = Stream(live, "live", 0.5, 0.97)
        bad = Stream(degraded, "canary", 0.5, 0.60)
        streams, warm_up = [healthy, bad], 0.0
    else:
        standby, degraded = version("1"), version("2")
        deploy(standby, "standby", 0.0)
        deploy(degraded, "live", 1.0)
        bad = Stream(degraded, "live", 1.0, 0.97)
        streams, warm_up = [bad], WARM_UP_SECONDS

    began = time.monotonic()
    sent = 0
    started_at: datetime | None = None
    minimum_at: datetime | None = None
    evidence_at: datetime | None = None
    recorded: AuditEvent | None = None
    while time.monotonic() - began < timeout:
        now = timezone.now()
        elapsed = time.monotonic() - began
        if started_at is None and elapsed >= warm_up:
            started_at = now
            if kind == "spike":
                bad.failure = 0.5
        due = int(rate * elapsed) - sent
        if due > 0:
            writer.write(streams, due, now)
            sent += due
        figures = WindowFigures(
            audited=bad.audited, audit_agreed=bad.agreed, decisions=bad.decisions, failed=bad.failed
        )
        if minimum_at is None and started_at is not None:
            enough = (
                bad.audited >= thresholds.min_audited
                if kind == "canary"
                else bad.decisions >= thresholds.min_decisions
            )
            minimum_at = now if enough else None
        check = (agreement_check if kind == "canary" else error_rate_check)(figures, thresholds)
        if evidence_at is None and started_at is not None and check.verdict == BREACH:
            evidence_at = now
        recorded = (
            AuditEvent.objects.filter(action="monitor.rollback", queue=queue)
            .order_by("created_at")
            .first()
        )
        if recorded is not None:
            break
        time.sleep(max(0.0, TICK_SECONDS - (time.monotonic() - began - elapsed)))
    missed = 0
    if recorded is not None and evidence_at is not None:
        missed = MonitorCheck.objects.filter(
            model_version=bad.version,
            created_at__gte=evidence_at,
            created_at__lt=recorded.created_at,
            rolled_back=False,
        ).count()
    # Leave nothing deciding, so that later rounds' looks cost the same.
    for deployment in Deployment.objects.filter(queue=queue, role__in=["live", "canary"]):
        rollout_rollback(
            queue=queue,
            model_version=deployment.model_version,
            actor=None,
            reason="end of the benchmark round",
        )
    return RoundResult(
        kind=kind,
        started=started_at or timezone.now(),
        minimum_at=minimum_at,
        evidence_at=evidence_at,
        recorded_at=recorded.created_at if recorded is not None else None,
        looks_missed=missed,
    )


def _look_cost(inspector: Any, rounds: int) -> list[tuple[str, str]]:
    """Time one look at a version whose window holds 20,000 and 100,000 decisions."""
    from django.db import connection
    from django.utils import timezone

    from deployments.models import Deployment, ModelVersion
    from deployments.monitor import rollout_monitor_run
    from inspections.services import queue_create
    from shadowlab import digits

    rows: list[tuple[str, str]] = []
    rng = np.random.default_rng(7)
    queue = queue_create(
        name="Bench look", slug="bench-look", labels=digits.LABELS, input_width=digits.WIDTH
    )
    model = ModelVersion.objects.create(
        queue=queue,
        name="bench-look",
        version="1",
        onnx_file="models/bench-look.onnx",
        sha256="0" * 64,
        size_bytes=1,
        labels=list(queue.labels),
        input_width=queue.input_width,
        input_name="input",
        probability_output="probabilities",
    )
    split = digits.digits_split()
    _profile_store(model, split.train_x)
    Deployment.objects.create(
        queue=queue,
        model_version=model,
        role="live",
        traffic_share=1.0,
        started_at=timezone.now() - timedelta(hours=1),
    )
    stream = Stream(model, "live", 1.0, 0.97)
    writer = Writer(queue, inspector, 0, rng)
    holdout = split.holdout_x
    written = 0
    for target in (20_000, 100_000):
        while written < target:
            chunk = min(5_000, target - written)
            _write_with_features(writer, stream, chunk, holdout, rng)
            written += chunk
        # A database in service has planner statistics; a freshly loaded one has none yet.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
        timings = []
        for _ in range(rounds):
            began = time.perf_counter()
            rollout_monitor_run()
            timings.append(time.perf_counter() - began)
        rows.append(
            (
                f"one look, {target:,} decisions in the window",
                f"median {statistics.median(timings) * 1000:,.0f} ms "
                f"(min {min(timings) * 1000:,.0f}, max {max(timings) * 1000:,.0f}) over {rounds}",
            )
        )
    return rows


def _profile_store(model: Any, reference: np.ndarray) -> None:
    from analytics.models import ReferenceProfile
    from analytics.stats.binning import feature_histograms, reference_bins_with_range_by_feature

    bins = reference_bins_with_range_by_feature(reference)
    counts = feature_histograms(reference, bins)
    ReferenceProfile.objects.create(
        model_version=model,
        rows=len(reference),
        fine_edges=[b.fine_edges[1:-1].tolist() for b in bins],
        coarse_edges=[b.coarse_edges[1:-1].tolist() for b in bins],
        feature_counts=[c.tolist() for c in counts],
        prediction_counts=[0] * 10,
        format=ReferenceProfile.CURRENT_FORMAT,
        feature_minimum=[b.minimum for b in bins],
        feature_maximum=[b.maximum for b in bins],
        feature_categorical=[b.categorical for b in bins],
    )


def _write_with_features(
    writer: Writer, stream: Stream, count: int, features: np.ndarray, rng: np.random.Generator
) -> None:
    """Write decided items with real digit features and judged audit items, in one batch."""
    from django.utils import timezone

    from deployments.models import Decision
    from inspections.models import Item, Judgment

    at = timezone.now()
    picks = rng.integers(0, len(features), size=count)
    audit = rng.random(count) < AUDIT_SHARE
    items = Item.objects.bulk_create(
        Item(
            queue=writer.queue,
            external_id=f"look-{writer.serial + k}",
            features=features[picks[k]].tolist(),
            received_at=at,
            route=Item.Route.MODEL,
            audit_sample=bool(audit[k]),
            judgments_needed=int(audit[k]),
            judgment_count=int(audit[k]),
            human_status=Item.HumanStatus.COMPLETE if audit[k] else Item.HumanStatus.NOT_NEEDED,
        )
        for k in range(count)
    )
    writer.serial += count
    Decision.objects.bulk_create(
        Decision(
            item=item,
            model_version=stream.version,
            role="live",
            outcome=Decision.Outcome.DECIDED,
            label=str(k % 10),
            confidence=0.9,
            latency_ms=float(rng.uniform(2.0, 8.0)),
            created_at=at,
        )
        for k, item in enumerate(items)
    )
    Judgment.objects.bulk_create(
        Judgment(item=item, inspector=writer.inspector, label=str(k % 10), seconds_spent=3.0)
        for k, item in enumerate(items)
        if audit[k]
    )


def _figure(value: float | None, interval: int) -> str:
    if value is None:
        return "not reached"
    return f"{value:6.1f} s = {value / interval:4.2f} intervals"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=int, default=5, help="Seconds between looks.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of each degradation.")
    parser.add_argument("--rate", type=float, default=200.0, help="Model-routed items/s.")
    parser.add_argument("--timeout", type=float, default=90.0, help="Longest round, seconds.")
    parser.add_argument("--embedded", action="store_true", help="SQLite and the file broker.")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    args = parser.parse_args()

    os.environ["SHADOWLAB_MONITOR_SECONDS"] = str(args.interval)
    os.environ["EMAIL_URL"] = "dummymail://"
    if args.embedded:
        var = _embedded_setup()
        stack = "SQLite + file broker"
    else:
        var = _postgres_setup(args.database_url, args.redis_url)
        stack = "PostgreSQL + Redis"

    from django.contrib.auth.models import Group, User

    from shadowlab import roles

    roles.groups_sync()
    admin = User.objects.create_user("bench-admin", email="admin@example.com")
    # Mail goes nowhere (EMAIL_URL=dummymail://) but its recipients are still looked up.
    admin.groups.add(Group.objects.get(name=roles.ADMIN))
    inspector = User.objects.create_user("bench-inspector")
    inspector.groups.add(Group.objects.get(name=roles.INSPECTOR))

    broker_purge()
    workers = Workers(1, concurrency=1, log_path=var / "worker.log")
    beat = Beat(var / "beat.log")
    results: list[RoundResult] = []
    try:
        workers.start()
        beat.start()
        for number in range(args.rounds):
            for kind in ("canary", "spike"):
                result = _run_round(
                    kind, number, rate=args.rate, inspector=inspector, timeout=args.timeout
                )
                results.append(result)
                print(
                    f"round {number + 1} {kind:6}: evidence -> recorded "
                    f"{_figure(_seconds(result.recorded_at, result.evidence_at), args.interval)}",
                    flush=True,
                )
    finally:
        beat.stop()
        workers.stop()

    rows = [
        ("stack", stack),
        ("monitor interval", f"{args.interval} s"),
        ("model-routed items", f"{args.rate:,.0f}/s, {AUDIT_SHARE:.0%} audited and judged at once"),
    ]
    for kind, title in (("canary", "worse canary"), ("spike", "error spike on live")):
        mine = [r for r in results if r.kind == kind]
        for label, pairs in (
            ("degradation -> minimum sample", [(r.minimum_at, r.started) for r in mine]),
            ("degradation -> evidence", [(r.evidence_at, r.started) for r in mine]),
            ("degradation -> rollback recorded", [(r.recorded_at, r.started) for r in mine]),
            ("minimum sample -> rollback recorded", [(r.recorded_at, r.minimum_at) for r in mine]),
            ("evidence -> rollback recorded", [(r.recorded_at, r.evidence_at) for r in mine]),
        ):
            values = [v for v in (_seconds(a, b) for a, b in pairs) if v is not None]
            text = (
                f"median {_figure(statistics.median(values), args.interval)}, "
                f"max {max(values):.1f} s"
                if values
                else "not reached"
            )
            rows.append((f"{title}: {label}", text))
        rows.append(
            (
                f"{title}: looks after the evidence that did not roll back",
                ", ".join(str(r.looks_missed) for r in mine),
            )
        )
    rows += _look_cost(inspector, rounds=5)
    print()
    print(table(rows, f"Automatic rollback time ({stack})"))


if __name__ == "__main__":
    main()
