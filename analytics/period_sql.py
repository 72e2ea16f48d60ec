"""The SQL pieces every period query shares: table names, the period's items, one period.

The f-strings splice only the models' table names and states; values from callers are
bound parameters (hence the S608 waivers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from deployments.models import ModelVersion, Prediction
from inspections.models import Item, Judgment, Queue

# Table names and state values come from the models, so a rename cannot leave the SQL behind.
ITEM_TABLE = Item._meta.db_table
JUDGMENT_TABLE = Judgment._meta.db_table
PREDICTION_TABLE = Prediction._meta.db_table
COMPLETE = Item.HumanStatus.COMPLETE.value
OK = Prediction.Status.OK.value

PERIOD_ITEMS = f"""
period_items AS (
    SELECT id, received_at, human_status FROM {ITEM_TABLE}
    WHERE queue_id = %s AND received_at >= %s AND received_at < %s
)"""  # noqa: S608

CONSENSUS = f"""
consensus AS (
    SELECT j.item_id, MIN(j.label) AS label FROM {JUDGMENT_TABLE} j
    JOIN period_items i ON i.id = j.item_id
    WHERE i.human_status = '{COMPLETE}'
    GROUP BY j.item_id HAVING COUNT(DISTINCT j.label) = 1
)"""  # noqa: S608

JUDGED = f"""
judged AS (
    SELECT j.item_id, COUNT(*) AS n, COUNT(DISTINCT j.label) AS labels
    FROM {JUDGMENT_TABLE} j JOIN period_items i ON i.id = j.item_id GROUP BY j.item_id
)"""  # noqa: S608


@dataclass(frozen=True)
class Period:
    """The rows of one queue and model version received in [start, end)."""

    queue: Queue
    model_version: ModelVersion
    start: datetime
    end: datetime

    def params(self) -> list[Any]:
        """Return the PERIOD_ITEMS parameters, adapted for the database in use."""
        adapt = connection.ops.adapt_datetimefield_value
        return [self.queue.pk, adapt(self.start), adapt(self.end)]


def rows_fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Return every row of one query."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
