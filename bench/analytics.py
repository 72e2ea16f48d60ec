"""Analytics at scale: reports from daily rollups against the same figures from raw rows.

Bulk-loads N judged and predicted items with 64 features over ten closed days into
PostgreSQL (COPY), a tenth of them decided by the version at intake and audited, rolls up
nine days, then times: rolling up the tenth day, the full report set from rollups (every
item and the audit sample), the JSON API per report; and beside each, the same figures
computed from the raw rows with pandas / scikit-learn / SciPy in the same run.

    .venv/bin/python bench/analytics.py [--items 1000000] [--days 10]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import warnings
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._stack import (
    DEFAULT_DATABASE,
    DEFAULT_REDIS,
    database_create,
    django_setup,
    services_start,
    table,
    tables_empty,
)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def gate_evaluation_seconds(
    *, model_version: Any, actor: Any, repeats: int = 3
) -> tuple[float, str]:
    """Return the best time of evaluating a version's gate from rollups, and a summary of it.

    The whole service: policy, evidence from the rollups plus the open day, the rules, the
    snapshot and its audit event, as POST /api/v1/queues/<slug>/gate runs it.
    """
    from analytics.gate.evaluation import gate_evaluation_run

    best, summary = float("inf"), ""
    for _ in range(repeats):
        started = time.perf_counter()
        evaluation = gate_evaluation_run(model_version=model_version, actor=actor)
        best = min(best, time.perf_counter() - started)
        evidence = evaluation.snapshot["evidence"]
        summary = (
            f"verdict {evaluation.verdict}, {evidence['judged']:,} judgments,"
            f" {evidence['double_inspected']:,} panel items"
        )
    return best, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS)
    args = parser.parse_args()

    services_start()
    database_create(args.database_url)
    django_setup(args.database_url, args.redis_url)

    import numpy as np
    import pandas as pd
    from django.contrib.auth.models import Group, User
    from django.db import connection
    from django.test import Client
    from scipy import stats
    from scipy.spatial.distance import jensenshannon
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, precision_recall_fscore_support

    from analytics import services
    from analytics.registry import report_build
    from analytics.selectors import ReportScope
    from deployments.registry import reference_data
    from shadowlab import digits, roles
    from shadowlab.demo import demo_setup

    print("setting up the demo model…", flush=True)
    tables_empty()
    demo = demo_setup(items=0, log=lambda line: None)
    queue, version = demo.queue, demo.models[0]
    inspectors = [User.objects.create(username=f"bench-inspector-{n}") for n in range(6)]
    lead = User.objects.create(username="bench-lead")
    roles.groups_sync()
    lead.groups.add(Group.objects.get(name=roles.ML_LEAD))

    # Feature vectors come from two pools of digit-like rows (the second shifted on eight
    # features, so later days drift); each pool row's JSON is formatted once.
    rng = np.random.default_rng(42)
    split = digits.digits_split()
    base = split.holdout_x.astype(np.float64)
    truth_pool = split.holdout_y.astype(np.int64)
    pools, pool_json = [], []
    for shift in (0.0, 2.0):
        picks = rng.integers(0, base.shape[0], 4000)
        pool_rows = np.round(base[picks] + rng.normal(0, 0.5, (4000, base.shape[1])), 1)
        pool_rows[:, :8] += shift
        pools.append((pool_rows, truth_pool[picks]))
        pool_json.append([json.dumps(row.tolist()) for row in pool_rows])

    n, days = args.items, args.days
    today = services.utc_today()
    first_day = today - timedelta(days=days)
    per_day = n // days
    day_of = np.repeat(np.arange(days), per_day)[:n]
    n = day_of.size
    pool_of = (day_of >= days // 2).astype(np.int64)
    row_of = rng.integers(0, 4000, n)
    truth = np.where(pool_of == 0, pools[0][1][row_of], pools[1][1][row_of])
    human = np.where(rng.random(n) < 0.04, rng.integers(0, 10, n), truth)
    model = np.where(rng.random(n) < 0.07, rng.integers(0, 10, n), truth)
    second = np.where(rng.random(n) < 0.04, rng.integers(0, 10, n), truth)
    double = rng.random(n) < 0.1
    confidence = np.clip(np.where(model == truth, rng.beta(8, 1, n), rng.beta(3, 2, n)), 0, 1)
    latency = rng.lognormal(np.log(0.05), 0.5, n)
    lag = rng.lognormal(np.log(0.3), 0.8, n)
    errors = rng.random(n) < 0.002
    # A tenth of the items were decided by the version at intake and also judged for audit.
    audited = rng.random(n) < 0.1
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=UTC)
    received = [
        start + timedelta(days=int(d), seconds=float(s))
        for d, s in zip(day_of, rng.uniform(0, 86399, n), strict=True)
    ]

    print(f"loading {n:,} items, judgments and predictions with COPY…", flush=True)
    load_started = time.perf_counter()
    labels = [str(label) for label in queue.labels]
    connection.ensure_connection()
    raw = connection.connection  # psycopg 3 connection under Django's wrapper
    with raw.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM inspections_item")
        (first_id,) = cursor.fetchone()
        ids = np.arange(first_id + 1, first_id + 1 + n)
        with cursor.copy(
            "COPY inspections_item (id, queue_id, external_id, features, received_at, route, "
            "judgments_needed, judgment_count, human_status, audit_sample, route_note) FROM STDIN"
        ) as copy:
            for i in range(n):
                needed = 2 if double[i] else 1
                copy.write_row(
                    (
                        int(ids[i]),
                        queue.pk,
                        f"b{i}",
                        pool_json[pool_of[i]][row_of[i]],
                        received[i],
                        "model" if audited[i] else "human",
                        needed,
                        needed,
                        "complete",
                        bool(audited[i]),
                        "",
                    )
                )
        with cursor.copy(
            "COPY inspections_judgment (item_id, inspector_id, label, seconds_spent, created_at) "
            "FROM STDIN"
        ) as copy:
            for i in range(n):
                when = received[i] + timedelta(seconds=30)
                copy.write_row((int(ids[i]), inspectors[i % 3].pk, labels[human[i]], 3.0, when))
                if double[i]:
                    copy.write_row(
                        (
                            int(ids[i]),
                            inspectors[3 + i % 3].pk,
                            labels[second[i]],
                            3.0,
                            when + timedelta(seconds=5),
                        )
                    )
        with cursor.copy(
            "COPY deployments_prediction (item_id, model_version_id, status, label, confidence, "
            "latency_ms, backend, reason, attempts, created_at) FROM STDIN"
        ) as copy:
            for i in range(n):
                when = received[i] + timedelta(seconds=float(lag[i]))
                if errors[i]:
                    copy.write_row(
                        (
                            int(ids[i]),
                            version.pk,
                            "error",
                            "",
                            None,
                            None,
                            "fp32",
                            "timeout: no result in 3 s",
                            1,
                            when,
                        )
                    )
                else:
                    copy.write_row(
                        (
                            int(ids[i]),
                            version.pk,
                            "ok",
                            labels[model[i]],
                            float(confidence[i]),
                            float(latency[i]),
                            "fp32",
                            "",
                            1,
                            when,
                        )
                    )
        with cursor.copy(
            "COPY deployments_decision (item_id, model_version_id, role, outcome, label, "
            "confidence, latency_ms, reason, created_at) FROM STDIN"
        ) as copy:
            for k in np.flatnonzero(audited).tolist():
                copy.write_row(
                    (
                        int(ids[k]),
                        version.pk,
                        "live",
                        "decided",
                        labels[model[k]],
                        float(confidence[k]),
                        float(latency[k]),
                        "",
                        received[k],
                    )
                )
        cursor.execute("SELECT setval('inspections_item_id_seq', %s)", (int(ids[-1]),))
    raw.commit()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    load_seconds = time.perf_counter() - load_started
    del received

    print("rolling up the first days…", flush=True)
    services.reference_profile_ensure(model_version=version)
    started = time.perf_counter()
    services.rollups_refresh(today=today - timedelta(days=1))
    backfill_seconds = time.perf_counter() - started
    new_day = today - timedelta(days=1)
    started = time.perf_counter()
    services.rollup_compute(model_version=version, day=new_day)
    rollup_seconds = time.perf_counter() - started

    scope = ReportScope(queue=queue, model_version=version, since=first_day, until=new_day)
    kinds = ["agreement", "baseline", "disagreements", "drift", "confidence", "operations"]
    report_set = []
    for _ in range(3):
        started = time.perf_counter()
        for kind in kinds:
            report_build(kind=kind, scope=scope, options={})
        report_set.append(time.perf_counter() - started)
    report_seconds = min(report_set)
    audit_scope = replace(scope, sample="audit")
    audit_set = []
    for _ in range(3):
        started = time.perf_counter()
        for kind in kinds:
            report_build(kind=kind, scope=audit_scope, options={})
        audit_set.append(time.perf_counter() - started)
    audit_seconds = min(audit_set)
    gate_seconds, gate_summary = gate_evaluation_seconds(model_version=version, actor=lead)

    client = Client(HTTP_HOST="localhost")
    client.force_login(lead)
    window = f"model={version.key}&since={first_day.isoformat()}&until={today.isoformat()}"

    def server_time(url: str) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            response = client.get(url)
            best = min(best, time.perf_counter() - started)
            assert response.status_code == 200, response.content[:200]
        return best

    page_times = {
        f"JSON {kind}": server_time(f"/api/v1/queues/{queue.slug}/reports/{kind}?{window}")
        for kind in kinds
    }
    # The dashboard pages themselves: report, charts built in Python, template.
    page_times.update(
        {f"page {kind}": server_time(f"/overview/{queue.slug}/{kind}/?{window}") for kind in kinds}
    )
    page_times["page overview"] = server_time("/overview/")
    page_times.update(
        {
            f"JSON {kind}, audit sample": server_time(
                f"/api/v1/queues/{queue.slug}/reports/{kind}?{window}&sample=audit"
            )
            for kind in kinds
        }
    )
    page_times["page overview, audit sample"] = server_time("/overview/?sample=audit")
    rollup_peak = _peak_mb()

    print(
        "computing the same figures from raw rows with pandas / scikit-learn / SciPy…", flush=True
    )
    query = """
        SELECT i.id, i.received_at, p.status, p.label AS model, p.confidence, p.latency_ms,
               EXTRACT(EPOCH FROM p.created_at - i.received_at) AS lag
        FROM inspections_item i JOIN deployments_prediction p ON p.item_id = i.id
        WHERE i.queue_id = %(queue)s AND p.model_version_id = %(version)s
          AND i.received_at >= %(start)s AND i.received_at < %(end)s"""
    judgment_query = """
        SELECT j.item_id AS id, j.label AS human, j.inspector_id, j.created_at
        FROM inspections_judgment j JOIN inspections_item i ON i.id = j.item_id
        WHERE i.queue_id = %(queue)s AND i.received_at >= %(start)s AND i.received_at < %(end)s"""
    feature_query = """
        SELECT i.features::text FROM inspections_item i JOIN deployments_prediction p
        ON p.item_id = i.id AND p.model_version_id = %(version)s AND p.status = 'ok'
        WHERE i.queue_id = %(queue)s AND i.received_at >= %(start)s AND i.received_at < %(end)s"""
    reference = np.asarray(reference_data(version), dtype=np.float64)

    # pandas reads through the psycopg connection directly; it warns that only SQLAlchemy
    # connections are "tested", which is noise here.
    warnings.filterwarnings("ignore", message="pandas only supports SQLAlchemy")

    def raw_reports(since: datetime, until: datetime) -> None:
        params = {"queue": queue.pk, "version": version.pk, "start": since, "end": until}
        predictions = pd.read_sql(query, raw, params=params)
        judgments = pd.read_sql(judgment_query, raw, params=params)
        joined = judgments.merge(predictions[predictions.status == "ok"], on="id")
        h, m = joined.human.astype(int), joined.model.astype(int)
        (h == m).mean()
        cohen_kappa_score(h, m)
        confusion_matrix(h, m, labels=range(10))
        precision_recall_fscore_support(h, m, labels=range(10), zero_division=0)
        joined.assign(agree=h == m).groupby("inspector_id").agree.mean()
        joined.assign(day=joined.received_at.dt.date, agree=h == m).groupby("day").agree.mean()
        ordered = judgments.sort_values(["id", "created_at"])
        ordered["rank"] = ordered.groupby("id").cumcount()
        pairs = ordered[ordered["rank"] == 0].merge(ordered[ordered["rank"] == 1], on="id")
        cohen_kappa_score(pairs.human_x, pairs.human_y)
        consensus = judgments.groupby("id").human.agg(["nunique", "min"])
        single = consensus[consensus["nunique"] == 1]
        scored = predictions[predictions.status == "ok"].merge(
            single, left_on="id", right_index=True
        )
        agree = scored.model.astype(int) == scored["min"].astype(int)
        calibration_curve(agree, scored.confidence.clip(0, 1), n_bins=10)
        np.percentile(predictions.latency_ms.dropna(), [50, 95, 99])
        np.percentile(predictions.lag, [50, 95, 99])
        with raw.cursor() as cursor:
            cursor.execute(feature_query, params)
            texts = [row[0] for row in cursor.fetchall()]
        current = np.array(json.loads("[" + ",".join(texts) + "]"), dtype=np.float64)
        del texts
        for j in range(current.shape[1]):
            stats.ks_2samp(reference[:, j], current[:, j])
            edges = np.quantile(reference[:, j], np.linspace(0, 1, 101))
            jensenshannon(
                np.histogram(reference[:, j], edges)[0], np.histogram(current[:, j], edges)[0]
            )
        stats.chi2_contingency(
            np.vstack([np.bincount(m, minlength=10) + 1, np.bincount(h, minlength=10) + 1])
        )

    day_start = datetime.combine(new_day, datetime.min.time(), tzinfo=UTC)
    started = time.perf_counter()
    raw_reports(day_start, day_start + timedelta(days=1))
    raw_day_seconds = time.perf_counter() - started
    started = time.perf_counter()
    raw_reports(start, day_start + timedelta(days=1))
    raw_all_seconds = time.perf_counter() - started
    raw_peak = _peak_mb()

    page_max = max(page_times.values())
    rows = [
        ("items loaded (judged and predicted)", f"{n:,} over {days} days, 64 features"),
        ("bulk load (COPY) + VACUUM ANALYZE", f"{load_seconds:.1f} s"),
        (f"roll up {days - 1} earlier days", f"{backfill_seconds:.1f} s"),
        (
            f"roll up a new day ({per_day:,} items)  [target <= 10 s]",
            f"{rollup_seconds:.2f} s   raw pandas/sklearn/SciPy on that day {raw_day_seconds:.2f} s"
            f"  ratio {raw_day_seconds / rollup_seconds:.1f}x",
        ),
        (
            "full report set from rollups  [target <= 0.5 s]",
            f"{report_seconds * 1000:.0f} ms   raw on all {n:,} rows {raw_all_seconds:.1f} s"
            f"  ratio {raw_all_seconds / report_seconds:.0f}x",
        ),
        (
            f"full report set on the audit sample ({int(audited.sum()):,} items)",
            f"{audit_seconds * 1000:.0f} ms",
        ),
        (
            f"gate evaluation from rollups ({n:,} items)  [target <= 300 ms]",
            f"{gate_seconds * 1000:.0f} ms   {gate_summary}",
        ),
        *[
            (f"  {name}  [target <= 300 ms]", f"{seconds * 1000:.0f} ms")
            for name, seconds in page_times.items()
        ],
        (
            "slowest dashboard page or JSON report",
            f"{page_max * 1000:.0f} ms   ratio raw/page {raw_all_seconds / page_max:.0f}x",
        ),
        ("peak RSS after the rollup path", f"{rollup_peak:.0f} MB"),
        ("peak RSS after the raw path", f"{raw_peak:.0f} MB"),
    ]
    print()
    print(table(rows, "Analytics at scale (PostgreSQL, one process)"))


if __name__ == "__main__":
    main()
