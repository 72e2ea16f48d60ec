"""One new item with the model's decision on it: one statement on PostgreSQL, two elsewhere."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from deployments.models import Decision
from inspections.item_insert import item_with_decision_insert
from inspections.models import Item

pytestmark = pytest.mark.django_db


def _item(queue, external_id: str) -> Item:
    return Item(
        queue=queue,
        external_id=external_id,
        features=[0.5] * 64,
        received_at=timezone.now(),
        route="model",
        judgments_needed=0,
        human_status="not_needed",
    )


def _decision(item: Item, model_version) -> Decision:
    return Decision(
        item=item,
        model_version=model_version,
        role="live",
        outcome="decided",
        label="7",
        confidence=0.93,
        latency_ms=0.4,
        created_at=timezone.now(),
    )


def test_an_item_and_its_decision_are_stored_linked_and_cached(queue, model_version):
    item = _item(queue, "one")
    decision = _decision(item, model_version)

    item_with_decision_insert(item, decision)

    stored = Item.objects.select_related("decision").get(pk=item.pk)
    assert stored.features == [0.5] * 64 and stored.route == "model"
    assert stored.decision.pk == decision.pk
    assert (stored.decision.label, stored.decision.confidence) == ("7", 0.93)
    assert item.decision is decision  # cached: the API answers without a query
    assert not item._state.adding and not decision._state.adding


def test_an_item_without_a_decision_is_stored_alone(queue):
    item = _item(queue, "alone")
    item_with_decision_insert(item, None)
    assert Item.objects.get(pk=item.pk).external_id == "alone"
    assert not Decision.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="one statement on PostgreSQL only")
def test_on_postgresql_both_rows_go_in_one_statement(
    queue, model_version, django_assert_num_queries
):
    item = _item(queue, "single")
    decision = _decision(item, model_version)
    with django_assert_num_queries(1):
        item_with_decision_insert(item, decision)
    assert Decision.objects.get(item__external_id="single").pk == decision.pk
