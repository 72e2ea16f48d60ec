"""Scoring runs in any number and order leave one prediction per item and version (R9).

The task functions are called directly, as a worker runs them: batches repeated, reordered,
re-queued by id alone or carrying their features, and given up on, in any interleaving.
"""

from __future__ import annotations

import pytest
from django.db.models import Count
from hypothesis import given, settings
from hypothesis import strategies as st

from deployments.models import Prediction, ScoringAttempt
from deployments.scoring_message import features_pack
from deployments.services import deployment_shadow_start
from deployments.tasks import score_items, score_items_give_up
from inspections.services import item_create

pytestmark = [pytest.mark.chaos, pytest.mark.django_db]

ITEMS = 8
GIVE_UP = "worker process died on each of 3 attempts to score this batch (property test)"


@pytest.fixture
def scoring_setup(shadow_model, second_version, queue, digit_rows, admin_user):
    deployment_shadow_start(model_version=second_version, actor=admin_user)
    items = [
        item_create(queue=queue, external_id=f"p{n}", features=digit_rows[n].astype(float).tolist())
        for n in range(ITEMS)
    ]
    return [shadow_model.pk, second_version.pk], items


# One run: which version, which items in which order, and how the message carries them.
runs = st.lists(
    st.tuples(
        st.sampled_from([0, 1]),
        st.lists(st.integers(0, ITEMS - 1), min_size=1, max_size=ITEMS, unique=True),
        st.sampled_from(["features", "ids", "give up"]),
    ),
    min_size=1,
    max_size=10,
)


def _run(version_id: int, items, mode: str) -> None:
    ids = [item.pk for item in items]
    if mode == "give up":
        score_items_give_up(version_id, ids, GIVE_UP, 3)
    elif mode == "ids":
        score_items(version_id, ids)
    else:
        score_items(
            version_id,
            ids,
            features=features_pack([item.features for item in items]),
            received=[item.received_at.timestamp() for item in items],
        )


def test_any_runs_in_any_order_leave_exactly_one_prediction_per_item_and_version(
    scoring_setup, figure
):
    version_ids, items = scoring_setup
    examples: list[int] = []

    # The items are made once, by the fixture; each example starts from no predictions.
    @settings(max_examples=40, deadline=None)
    @given(plan=runs, repeats=st.integers(1, 3))
    def check(plan, repeats) -> None:
        Prediction.objects.all().delete()
        ScoringAttempt.objects.all().delete()
        # Each batch runs `repeats` times, the copies interleaved with the other batches.
        for _ in range(repeats):
            for version, indexes, mode in plan:
                _run(version_ids[version], [items[i] for i in indexes], mode)

        touched = {(items[i].pk, version_ids[v]) for v, indexes, _ in plan for i in indexes}
        stored = list(Prediction.objects.values_list("item_id", "model_version_id"))
        assert sorted(stored) == sorted(touched)
        per_pair = Prediction.objects.values("item", "model_version").annotate(n=Count("id"))
        assert not per_pair.filter(n__gt=1).exists()
        # Whatever ran first decided: scored before any give-up is ok, and the other way.
        for (item_id, version_id), first_mode in _first_modes(plan, items, version_ids).items():
            status = Prediction.objects.get(item_id=item_id, model_version_id=version_id).status
            assert status == ("error" if first_mode == "give up" else "ok")
        examples.append(len(plan) * repeats)

    check()
    figure("examples (each a sequence of task runs)", len(examples))
    figure("most task runs in one example", max(examples))
    figure("predictions per item and version, in every example", 1)


def _first_modes(plan, items, version_ids) -> dict[tuple[int, int], str]:
    first: dict[tuple[int, int], str] = {}
    for version, indexes, mode in plan:
        for i in indexes:
            first.setdefault((items[i].pk, version_ids[version]), mode)
    return first


def test_scoring_the_same_items_in_any_order_gives_the_same_predictions(scoring_setup):
    version_ids, items = scoring_setup
    score_items(version_ids[0], [item.pk for item in items])
    forward = {
        p.item_id: (p.label, p.probabilities)
        for p in Prediction.objects.filter(model_version_id=version_ids[0])
    }
    Prediction.objects.all().delete()
    for item in reversed(items):
        score_items(version_ids[0], [item.pk])
    backward = {
        p.item_id: (p.label, p.probabilities)
        for p in Prediction.objects.filter(model_version_id=version_ids[0])
    }
    assert forward == backward
