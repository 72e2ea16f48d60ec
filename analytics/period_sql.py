"""The SQL pieces every period query shares: table names, the period's items, one period.

The f-strings splice only the models' table names and states; values from callers are
bound parameters (hence the S608 waivers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from analytics.samples import SAMPLE_DEFAULT, Sample
from deployments.models import Decision, ModelVersion, Prediction
from inspections.models import Item, Judgment, Queue

# Table names and state values come from the models, so a rename cannot leave the SQL behind.
ITEM_TABLE = Item._meta.db_table
JUDGMENT_TABLE = Judgment._meta.db_table
PREDICTION_TABLE = Prediction._meta.db_table
DECISION_TABLE = Decision._meta.db_table
COMPLETE = Item.HumanStatus.COMPLETE.value
OK = Prediction.Status.OK.value
DECIDED = Decision.Outcome.DECIDED.value

PERIOD_ITEMS = f"""
period_items AS (
    SELECT id, received_at, human_status FROM {ITEM_TABLE}
    WHERE queue_id = %s AND received_at >= %s AND received_at < %s
)"""  # noqa: S608

# The same items narrowed to one version's audit sample (analytics.samples): decided by
# that version at intake and sent to inspectors as well. A decision is one per item, so
# the join keeps one row per item.
AUDIT_PERIOD_ITEMS = f"""
period_items AS (
    SELECT i.id, i.received_at, i.human_status FROM {ITEM_TABLE} i
    JOIN {DECISION_TABLE} d ON d.item_id = i.id
    WHERE i.queue_id = %s AND i.received_at >= %s AND i.received_at < %s
        AND i.audit_sample = %s AND d.model_version_id = %s AND d.outcome = '{DECIDED}'
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
    """The rows of one queue and model version received in [start, end), of one sample."""

    queue: Queue
    model_version: ModelVersion
    start: datetime
    end: datetime
    sample: Sample = SAMPLE_DEFAULT

    @property
    def items_sql(self) -> str:
        """Return the period_items CTE of this sample (PERIOD_ITEMS or AUDIT_PERIOD_ITEMS)."""
        return AUDIT_PERIOD_ITEMS if self.sample == "audit" else PERIOD_ITEMS

    def params(self) -> list[Any]:
        """Return the parameters of ``items_sql``, adapted for the database in use."""
        adapt = connection.ops.adapt_datetimefield_value
        params = [self.queue.pk, adapt(self.start), adapt(self.end)]
        if self.sample == "audit":
            params += [True, self.model_version.pk]
        return params


def rows_fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Return every row of one query."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
