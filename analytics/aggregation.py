"""Reduce one period of items, judgments and predictions to PeriodCounts, in the database.

Count tables (confusion, per inspector, pairs, items lacking a prediction or a decision,
variant comparisons) are GROUP BY queries. Per-prediction scalars (confidence, latency,
lag) and feature vectors are read for the period only -- one day at most, for a rollup
or for the open day -- because their bins must match the pure functions' bins exactly.
A period is aggregated in slices of about SLICE_ITEMS items by arrival and the slices'
counts are added up, so the memory a rollup or a report of the open day needs is bounded by
the slice, not by how many items the day holds.

Plain SQL that SQLite and PostgreSQL both run; only the lag expression differs. The
f-strings splice only this module's constant CTEs and the models' table names and states;
every value from a caller is a bound parameter (hence the S608 waivers).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from itertools import pairwise

import numpy as np
import pandas as pd
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from analytics.aggregation_panels import fleiss_count, paired_differences_compute, pairs_count
from analytics.period_sql import (
    COMPLETE,
    CONSENSUS,
    ITEM_TABLE,
    JUDGED,
    JUDGMENT_TABLE,
    OK,
    PERIOD_ITEMS,
    PREDICTION_TABLE,
    Period,
    rows_fetch,
)
from analytics.stats.binning import ReferenceBins, feature_histograms
from analytics.stats.calibration import coverage_bins, reliability_bins
from analytics.stats.counts import (
    LAG_EDGES_SECONDS,
    LATENCY_EDGES_MS,
    Matrix,
    PeriodCounts,
    log_histogram,
    reason_kind,
)
from analytics.stats.feature_extremes import feature_extremes
from deployments.models import ModelVersion
from inspections.models import Queue
from shadowlab.finite import is_finite_number

__all__ = ["SLICE_ITEMS", "Period", "period_counts_compute", "queue_period_counts"]

# Items aggregated at once. A period's feature vectors and per-prediction rows are read a
# slice at a time: 18,000 items with 64 features read at once took 49 MB at the peak, and
# each web thread's allocator arena kept its largest peak, so the web's memory grew with
# the open day's items.
SLICE_ITEMS = 5_000


def _lag_seconds() -> str:
    if connection.vendor == "postgresql":
        return "EXTRACT(EPOCH FROM (p.created_at - i.received_at))"
    return "(julianday(p.created_at) - julianday(i.received_at)) * 86400.0"


@dataclass(frozen=True)
class ItemCounts:
    items: int
    undecided: int
    unscored: int
    judgments: int
    multi_judged: int  # items judged at least twice
    crowded: int  # items judged at least three times


def _item_counts(period: Period) -> ItemCounts:
    """Return items received, lacking a human decision, lacking a prediction; judgments."""
    # "Undecided" is CONSENSUS's complement: not complete, or judgments that disagree.
    sql = f"""WITH {period.items_sql}, {JUDGED}
        SELECT COUNT(*),
               SUM(CASE WHEN i.human_status = '{COMPLETE}' AND n.labels = 1 THEN 0 ELSE 1 END),
               SUM(CASE WHEN p.id IS NULL THEN 1 ELSE 0 END),
               SUM(COALESCE(n.n, 0)),
               SUM(CASE WHEN n.n >= 2 THEN 1 ELSE 0 END),
               SUM(CASE WHEN n.n >= 3 THEN 1 ELSE 0 END)
        FROM period_items i
        LEFT JOIN judged n ON n.item_id = i.id
        LEFT JOIN {PREDICTION_TABLE} p
            ON p.item_id = i.id AND p.model_version_id = %s"""  # noqa: S608
    ((items, undecided, unscored, judgments, multi, crowded),) = rows_fetch(
        sql, [*period.params(), period.model_version.pk]
    )
    return ItemCounts(
        items=int(items or 0),
        undecided=int(undecided or 0),
        unscored=int(unscored or 0),
        judgments=int(judgments or 0),
        multi_judged=int(multi or 0),
        crowded=int(crowded or 0),
    )


def queue_period_counts(*, queue: Queue, start: datetime, end: datetime) -> tuple[int, int, int]:
    """Return items received in [start, end), their judgments and items judged twice or more.

    For a queue no model scores (so no rollup holds these); otherwise PeriodCounts does.
    """
    adapt = connection.ops.adapt_datetimefield_value
    sql = f"""WITH {PERIOD_ITEMS}, {JUDGED}
        SELECT (SELECT COUNT(*) FROM period_items), SUM(n),
               SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END)
        FROM judged"""  # noqa: S608
    with _analytic_queries():
        ((items, judgments, multi),) = rows_fetch(sql, [queue.pk, adapt(start), adapt(end)])
    return int(items or 0), int(judgments or 0), int(multi or 0)


def _each_judgment(period: Period, index: dict[str, int]) -> tuple[Matrix, dict[int, Matrix]]:
    """Return the human x model table over every judgment, and [n, agreed] per inspector."""
    sql = f"""WITH {period.items_sql}
        SELECT j.inspector_id, j.label, p.label, COUNT(*) FROM {JUDGMENT_TABLE} j
        JOIN period_items i ON i.id = j.item_id
        JOIN {PREDICTION_TABLE} p ON p.item_id = j.item_id
            AND p.model_version_id = %s AND p.status = '{OK}'
        GROUP BY j.inspector_id, j.label, p.label"""  # noqa: S608
    k = len(index)
    table = np.zeros((k, k), np.int64)
    inspectors: dict[int, Matrix] = {}
    for inspector_id, human, model, count in rows_fetch(
        sql, [*period.params(), period.model_version.pk]
    ):
        if human not in index or model not in index:
            continue
        table[index[human], index[model]] += count
        tally = inspectors.setdefault(int(inspector_id), np.zeros(2, np.int64))
        tally[0] += count
        tally[1] += count if human == model else 0
    return table, inspectors


def _related_versions(version: ModelVersion) -> list[ModelVersion]:
    """Return the version's parent, if any, and its variants (read once for every slice)."""
    related = [version.parent] if version.parent is not None else []
    return related + list(version.variants.all())


def _variants(
    period: Period, index: dict[str, int], related: list[ModelVersion]
) -> dict[str, Matrix]:
    """Return this model's label x each related version's label on items both scored."""
    version = period.model_version
    sql = f"""WITH {period.items_sql}
        SELECT a.label, b.label, COUNT(*) FROM period_items i
        JOIN {PREDICTION_TABLE} a ON a.item_id = i.id
            AND a.model_version_id = %s AND a.status = '{OK}'
        JOIN {PREDICTION_TABLE} b ON b.item_id = i.id
            AND b.model_version_id = %s AND b.status = '{OK}'
        GROUP BY a.label, b.label"""  # noqa: S608
    k = len(index)
    tables = {}
    for other in related:
        table = np.zeros((k, k), np.int64)
        for mine, theirs, count in rows_fetch(sql, [*period.params(), version.pk, other.pk]):
            if mine in index and theirs in index:
                table[index[mine], index[theirs]] += count
        tables[other.key] = table
    return tables


# The features of the period's items this model version scored (alias f).
SCORED_FEATURES = f"""FROM period_items i
        JOIN {ITEM_TABLE} f ON f.id = i.id
        JOIN {PREDICTION_TABLE} p ON p.item_id = i.id
            AND p.model_version_id = %s AND p.status = '{OK}'"""


def _feature_text_sql(period: Period) -> str:
    """Return SQL giving the number of scored items of the right width and their features
    as one CSV text: a line per item, the JSON array without its brackets."""
    if connection.vendor == "postgresql":
        width = (
            "CASE WHEN jsonb_typeof(f.features) = 'array' THEN jsonb_array_length(f.features) END"
        )
        joined = "string_agg(btrim(f.features::text, '[]'), E'\\n')"
    else:
        width = "json_array_length(f.features)"
        joined = "group_concat(trim(f.features, '[]'), char(10))"
    return f"""WITH {period.items_sql}
        SELECT COUNT(*), {joined} {SCORED_FEATURES} WHERE {width} = %s"""


def _features_row_by_row(period: Period, width: int) -> np.ndarray:
    sql = f"""WITH {period.items_sql} SELECT f.features {SCORED_FEATURES}"""
    rows = []
    for (features,) in rows_fetch(sql, [*period.params(), period.model_version.pk]):
        vector = json.loads(features) if isinstance(features, str) else features
        if isinstance(vector, list) and len(vector) == width and all(map(_is_number, vector)):
            rows.append(vector)
    return np.asarray(rows, dtype=np.float64).reshape(-1, width)


def _is_number(value: object) -> bool:
    return is_finite_number(value)


def _feature_matrix(period: Period, width: int) -> np.ndarray:
    """Return the features of the items the model scored, rows x width.

    A scored item has the model's width; a row changed in storage since is skipped. The
    numbers come back as one CSV text that pandas parses in C: parsing 100,000 JSON arrays
    one by one in Python took 2 s of a day's rollup, this 0.5 s. Should the text hold
    anything but numbers, the rows are read and checked one by one instead.
    """
    params = [*period.params(), period.model_version.pk, width]
    ((count, text),) = rows_fetch(_feature_text_sql(period), params)
    values = np.empty((0, width))
    # Something other than numbers leaves the shape wrong: read row by row below.
    with contextlib.suppress(ValueError, pd.errors.ParserError):
        if count:
            csv = io.StringIO(text)
            values = pd.read_csv(csv, header=None, dtype=np.float64, engine="c").to_numpy()
    if values.shape == (count, width) and np.isfinite(values).all():
        return values
    return _features_row_by_row(period, width)


@contextmanager
def _analytic_queries() -> Iterator[None]:
    """Run the period's queries without PostgreSQL's JIT compiler.

    Their cost estimates pass jit_above_cost, and compiling them took longer (about 0.3 s
    a query) than the queries gained: a day's rollup spent 2 s of 9 s compiling.
    """
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield


def _received_at(value: datetime | str) -> datetime:
    """Return a received_at read by plain SQL as an aware datetime (SQLite gives text)."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            raise ValueError(f"not a date and time: {value!r}")
        value = parsed
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def period_slices(period: Period, size: int) -> list[Period]:
    """Return the period cut by arrival into consecutive periods of about `size` items each.

    A slice starts at the arrival time of every size-th item of the queue in the period, so
    items arriving at the same instant share a slice: beyond those that arrived at its first
    instant, a slice holds fewer than `size` items. The audit sample is cut by all the
    queue's items: its slices hold fewer.
    """
    adapt = connection.ops.adapt_datetimefield_value
    sql = f"""SELECT received_at FROM (
            SELECT received_at, ROW_NUMBER() OVER (ORDER BY received_at) AS n
            FROM {ITEM_TABLE} WHERE queue_id = %s AND received_at >= %s AND received_at < %s
        ) ranked WHERE n > 1 AND (n - 1) %% %s = 0 ORDER BY n"""  # noqa: S608
    rows = rows_fetch(sql, [period.queue.pk, adapt(period.start), adapt(period.end), size])
    cuts = sorted({_received_at(value) for (value,) in rows} - {period.start})
    edges = [period.start, *cuts, period.end]
    return [replace(period, start=a, end=b) for a, b in pairwise(edges)]


def period_counts_compute(
    *, period: Period, bins: list[ReferenceBins] | None, with_features: bool = True
) -> PeriodCounts:
    """Return every count of the period, feature histograms on the reference bins if given.

    The slices' counts add up to the period's: each item is in one slice, and the paired
    differences, kept in arrival order, are concatenated in the slices' order.
    """
    labels = [str(label) for label in period.queue.labels]
    index = {label: i for i, label in enumerate(labels)}
    with _analytic_queries():
        related = _related_versions(period.model_version)
        slices = period_slices(period, SLICE_ITEMS)
        total = _period_counts(slices[0], bins, with_features, index, related)
        for part in slices[1:]:
            total += _period_counts(part, bins, with_features, index, related)
        return total


def _period_counts(
    period: Period,
    bins: list[ReferenceBins] | None,
    with_features: bool,
    index: dict[str, int],
    related: list[ModelVersion],
) -> PeriodCounts:
    k = len(index)
    item_counts = _item_counts(period)
    each, inspectors = _each_judgment(period, index)
    scored = _feature_matrix(period, len(bins)) if bins is not None and with_features else None

    sql = f"""WITH {period.items_sql}, {CONSENSUS}
        SELECT p.status, p.label, c.label, p.confidence, p.latency_ms, p.backend,
               {_lag_seconds()}, p.reason
        FROM period_items i
        JOIN {PREDICTION_TABLE} p ON p.item_id = i.id AND p.model_version_id = %s
        LEFT JOIN consensus c ON c.item_id = i.id"""  # noqa: S608
    rows = rows_fetch(sql, [*period.params(), period.model_version.pk])
    ok = [row for row in rows if row[0] == OK and row[1] in index]
    errors: dict[str, int] = {}
    for row in rows:
        if row[0] != OK:
            kind = reason_kind(row[7] or "")
            errors[kind] = errors.get(kind, 0) + 1
    model = np.fromiter((index[row[1]] for row in ok), np.int64, len(ok))
    human = np.fromiter((index.get(row[2], -1) for row in ok), np.int64, len(ok))
    confidence = np.fromiter((row[3] for row in ok), np.float64, len(ok))
    decided = human >= 0
    agree = model[decided] == human[decided]
    consensus = np.bincount(human[decided] * k + model[decided], minlength=k * k).reshape(k, k)

    latency: dict[str, Matrix] = {}
    for backend in sorted({row[5] for row in rows}):
        values = [row[4] for row in rows if row[5] == backend and row[4] is not None]
        latency[backend] = log_histogram(values, LATENCY_EDGES_MS)
    lag = log_histogram([row[6] for row in rows if row[6] is not None], LAG_EDGES_SECONDS)

    return PeriodCounts(
        n_classes=k,
        items=item_counts.items,
        scored_ok=len(ok),
        scored_error=len(rows) - len(ok),
        unscored=item_counts.unscored,
        undecided=item_counts.undecided,
        judgments=item_counts.judgments,
        multi_judged=item_counts.multi_judged,
        confusion_each=each,
        confusion_consensus=consensus.astype(np.int64),
        inspectors=inspectors,
        label_counts=np.bincount(model, minlength=k).astype(np.int64),
        reliability=reliability_bins(np.clip(confidence[decided], 0.0, 1.0), agree),
        coverage=coverage_bins(np.clip(confidence[decided], 0.0, 1.0), agree),
        latency=latency,
        errors=errors,
        lag=lag,
        # Each of these reads every judgment of the period again: only when there are any.
        pairs=pairs_count(period, index)
        if item_counts.multi_judged
        else np.zeros((k, k, k), np.int64),
        fleiss=fleiss_count(period, index) if item_counts.crowded else {},
        features=None if scored is None or bins is None else feature_histograms(scored, bins),
        feature_extremes=None if scored is None else feature_extremes(scored, scored.shape[1]),
        variants=_variants(period, index, related),
        paired=paired_differences_compute(period, index)
        if item_counts.multi_judged
        else np.zeros(0, np.float64),
    )
