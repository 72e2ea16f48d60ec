"""Counts over items judged by a panel of inspectors: pairs, Fleiss sums, paired differences.

Each query reads the period's judgments again, so the period's aggregation runs them only
on days where some item was judged at least twice (or three times, for Fleiss).
"""

from __future__ import annotations

import numpy as np

from analytics.period_sql import (
    COMPLETE,
    JUDGMENT_TABLE,
    OK,
    PREDICTION_TABLE,
    Period,
    rows_fetch,
)
from analytics.stats.counts import FleissSums, Matrix, fleiss_sums
from analytics.stats.paired import Differences, paired_differences_from_counts


def pairs_count(period: Period, index: dict[str, int]) -> Matrix:
    """Return first judgment x second judgment x model label on scored items judged twice."""
    sql = f"""WITH {period.items_sql}, ranked AS (
            SELECT j.item_id, j.label,
                   ROW_NUMBER() OVER (PARTITION BY j.item_id ORDER BY j.created_at, j.id) AS rn
            FROM {JUDGMENT_TABLE} j JOIN period_items i ON i.id = j.item_id
        )
        SELECT a.label, b.label, p.label, COUNT(*) FROM ranked a
        JOIN ranked b ON b.item_id = a.item_id AND b.rn = 2
        JOIN {PREDICTION_TABLE} p ON p.item_id = a.item_id
            AND p.model_version_id = %s AND p.status = '{OK}'
        WHERE a.rn = 1
        GROUP BY a.label, b.label, p.label"""  # noqa: S608
    k = len(index)
    table = np.zeros((k, k, k), np.int64)
    for first, second, model, count in rows_fetch(sql, [*period.params(), period.model_version.pk]):
        if first in index and second in index and model in index:
            table[index[first], index[second], index[model]] += count
    return table


def fleiss_count(period: Period, index: dict[str, int]) -> dict[int, FleissSums]:
    """Return Fleiss sums per number of raters, over items judged by three or more."""
    sql = f"""WITH {period.items_sql}, crowded AS (
            SELECT j.item_id FROM {JUDGMENT_TABLE} j JOIN period_items i ON i.id = j.item_id
            GROUP BY j.item_id HAVING COUNT(*) >= 3
        )
        SELECT j.item_id, j.label, COUNT(*) FROM {JUDGMENT_TABLE} j
        JOIN crowded c ON c.item_id = j.item_id GROUP BY j.item_id, j.label"""  # noqa: S608
    per_item: dict[int, np.ndarray] = {}
    for item_id, label, count in rows_fetch(sql, period.params()):
        if label in index:
            per_item.setdefault(item_id, np.zeros(len(index), np.int64))[index[label]] += count
    by_raters: dict[int, list[np.ndarray]] = {}
    for row in per_item.values():
        by_raters.setdefault(int(row.sum()), []).append(row)
    return {m: fleiss_sums(np.vstack(rows)) for m, rows in by_raters.items()}


def paired_differences_compute(period: Period, index: dict[str, int]) -> Differences:
    """Return the paired difference of every scored item with a complete panel, by arrival.

    A panel still waiting for a judgment is left out: its figure would change when the
    last judgment came. Arrival order (received_at, then id) is fixed before any label is
    known, which the order-dependent confidence sequence of the gate requires.
    """
    sql = f"""WITH {period.items_sql}, votes AS (
            SELECT j.item_id, j.label, COUNT(*) AS n FROM {JUDGMENT_TABLE} j
            JOIN period_items i ON i.id = j.item_id
            WHERE i.human_status = '{COMPLETE}'
            GROUP BY j.item_id, j.label
        )
        SELECT p.label, SUM(v.n), SUM(CASE WHEN v.label = p.label THEN v.n ELSE 0 END),
               SUM(v.n * (v.n - 1) / 2)
        FROM period_items i
        JOIN votes v ON v.item_id = i.id
        JOIN {PREDICTION_TABLE} p ON p.item_id = i.id
            AND p.model_version_id = %s AND p.status = '{OK}'
        GROUP BY i.id, i.received_at, p.label
        HAVING SUM(v.n) >= 2
        ORDER BY i.received_at, i.id"""  # noqa: S608
    # PostgreSQL sums counts as numerics (Decimal): made ints here.
    rows = [
        (int(judgments), int(agrees), int(pairs))
        for label, judgments, agrees, pairs in rows_fetch(
            sql, [*period.params(), period.model_version.pk]
        )
        if label in index
    ]
    if not rows:
        return np.zeros(0, np.float64)
    judgments, agrees, pairs = np.asarray(rows, np.int64).T
    return paired_differences_from_counts(
        judgments=judgments, model_agrees=agrees, agreeing_pairs=pairs
    )
