"""Insert one new item with the model's decision on it in a single statement where possible.

On PostgreSQL the two rows go in one INSERT (the item's in a WITH clause, the decision's
taking its id): a model-routed intake then costs the database what an inspector-routed one
does. Elsewhere (SQLite) they are two ordinary inserts. The SQL is Django's own for each
model, so every field and conversion stays the model's.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field, Model
from django.db.models.expressions import RawSQL
from django.db.models.sql import InsertQuery

from deployments.models import Decision
from inspections.models import Item


def _insert_sql(
    obj: Model, connection: BaseDatabaseWrapper, returning: list[Field]
) -> tuple[str, tuple[Any, ...]]:
    """Return Django's INSERT for one unsaved object (its generated key left out)."""
    model = type(obj)
    fields = [field for field in model._meta.local_concrete_fields if not field.primary_key]
    query = InsertQuery(model)
    query.insert_values(fields, [obj])
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = returning
    ((statement, params),) = compiler.as_sql()
    return statement, tuple(params)


def item_with_decision_insert(item: Item, decision: Decision | None) -> None:
    """Insert the new item, and the decision on it if any, inside the caller's transaction."""
    using = router.db_for_write(Item)
    connection = connections[using]
    if decision is None or connection.vendor != "postgresql":
        item.save(force_insert=True, using=using)
        if decision is not None:
            decision.item = item
            decision.save(force_insert=True, using=using)
        return
    item_pk, decision_pk = Item._meta.pk, Decision._meta.pk
    assert item_pk is not None and decision_pk is not None
    item_sql, item_params = _insert_sql(item, connection, [item_pk])
    quoted = connection.ops.quote_name(item_pk.column)
    # Identifiers from the model; every value is a parameter.
    subquery = RawSQL(f"(SELECT {quoted} FROM new_item)", ())  # noqa: S608, S611
    decision.item_id = subquery  # type: ignore[attr-defined]
    try:
        decision_sql, decision_params = _insert_sql(
            decision, connection, [decision_pk, Decision._meta.get_field("item")]
        )
    finally:
        decision.item_id = None  # type: ignore[attr-defined,assignment]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH new_item AS ({item_sql}) {decision_sql}", (*item_params, *decision_params)
        )
        decision_id, item_id = cursor.fetchone()
    item.pk = item_id
    item._state.adding, item._state.db = False, using
    decision.pk = decision_id
    decision.item = item  # also caches the decision on the item (item.decision)
    decision._state.adding, decision._state.db = False, using
