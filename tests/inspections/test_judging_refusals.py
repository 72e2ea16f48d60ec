"""An inspector judges only the item on their own screen: every other judgment is refused (S9)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from inspections.models import Assignment, Item, Judgment
from inspections.services import item_assign_next, item_create, judgment_record

pytestmark = [pytest.mark.django_db, pytest.mark.security]

HX = {"HTTP_HX_REQUEST": "true"}
ZEROS = [0.0] * 64
JUDGE = "/inspect/digits/judge"


@pytest.fixture(autouse=True)
def _windows(settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "ASSIGNMENT_SECONDS": 600, "UNDO_SECONDS": 30}


def _item(queue, external_id, *, minutes_ago=0.0, needed=1):
    item = item_create(
        queue=queue,
        external_id=external_id,
        features=ZEROS if queue.slug == "digits" else [0.0, 0.0, 0.0],
        received_at=timezone.now() - timedelta(minutes=minutes_ago),
    )
    if needed != item.judgments_needed:
        Item.objects.filter(pk=item.pk).update(judgments_needed=needed)
        item.refresh_from_db()
    return item


def _post(client, item_id, label="3", **extra):
    data = {"label": label} if item_id is None else {"item_id": item_id, "label": label}
    return client.post(JUDGE, data, **{**HX, **extra})


def _shown(response) -> str:
    """Return the external id of the item the answer puts on screen, or "" if none."""
    html = response.content.decode()
    marker = '<p class="item-id">Item <code>'
    if marker not in html:
        return ""
    return html.split(marker, 1)[1].split("</code>", 1)[0]


def _refusal_cases(queue, other_queue, inspector, inspector2):
    """Items an attacker (inspector) may try to judge, each with why it is not theirs."""
    theirs = _item(queue, "theirs", minutes_ago=10)
    assert item_assign_next(queue=queue, inspector=inspector2) == theirs
    # The oldest open item: what a refusal puts on the inspector's screen, leaving the rest be.
    _item(queue, "spare", minutes_ago=60)

    unassigned = _item(queue, "never-shown", minutes_ago=5)  # older than "mine", never served

    elsewhere = _item(other_queue, "elsewhere")
    assert item_assign_next(queue=other_queue, inspector=inspector) == elsewhere

    mine = _item(queue, "mine", minutes_ago=1)
    Assignment.objects.create(
        item=mine,
        inspector=inspector,
        shown_at=timezone.now() - timedelta(minutes=15),
        expires_at=timezone.now() - timedelta(minutes=5),
    )

    decided = _item(queue, "decided", minutes_ago=20)
    judgment_record(item=decided, inspector=inspector2, label="1", seconds_spent=2.0)
    Assignment.objects.create(
        item=decided,
        inspector=inspector,
        shown_at=timezone.now(),
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    return {
        "another inspector's reserved item": (theirs, "not on your screen"),
        "an item never shown to anyone": (unassigned, "not on your screen"),
        "an item of another queue reserved for them there": (elsewhere, "not on your screen"),
        "their own expired reservation": (mine, "time ran out"),
        "an item already decided": (decided, "no longer needs a judgment"),
    }


def test_judgments_for_items_not_on_the_inspectors_screen_are_all_refused(
    client_for, queue, other_queue, inspector, inspector2, figure
):
    cases = _refusal_cases(queue, other_queue, inspector, inspector2)
    client = client_for(inspector)
    before = Judgment.objects.count()

    refused = 0
    for why, (item, reason) in cases.items():
        for extra in (HX, {}):  # the htmx fragment and the plain form post alike
            response = client.post(JUDGE, {"item_id": item.pk, "label": "3"}, **extra)
            assert response.status_code == 409, why
            assert reason in response.content.decode(), why
            refused += 1

    assert Judgment.objects.count() == before
    assert not Judgment.objects.filter(inspector=inspector).exists()
    for item in Item.objects.all():
        stored = Item.objects.get(pk=item.pk)
        assert stored.judgment_count == (1 if item.external_id == "decided" else 0)
    figure("refused judgments of items not on the inspector's screen", f"{refused} of {refused}")


def test_a_refused_judgment_loads_the_item_to_judge_next(
    client_for, queue, other_queue, inspector, inspector2
):
    cases = _refusal_cases(queue, other_queue, inspector, inspector2)
    client = client_for(inspector)

    response = _post(client, cases["another inspector's reserved item"][0].pk)

    assert response.status_code == 409
    html = response.content.decode()
    assert 'id="inspect-panel"' in html and 'role="status"' in html
    # The next item this inspector may judge, now reserved for them, not the one refused.
    assert _shown(response) == "spare"
    spare = Assignment.objects.get(item__external_id="spare", inspector=inspector)
    assert spare.expires_at > timezone.now()


def test_an_expired_reservation_is_refused_and_the_item_comes_back_to_judge(
    client_for, queue, inspector
):
    item = _item(queue, "slow")
    item_assign_next(queue=queue, inspector=inspector)
    Assignment.objects.update(
        shown_at=timezone.now() - timedelta(minutes=11),
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    client = client_for(inspector)

    refused = _post(client, item.pk)
    assert refused.status_code == 409
    assert "reserved for you for 10 min and the time ran out" in refused.content.decode()
    assert not Judgment.objects.exists()
    # Nobody else took it: it is on screen again, freshly reserved, and now the key press counts.
    assert _shown(refused) == "slow"

    accepted = _post(client, item.pk)
    assert accepted.status_code == 200
    assert Judgment.objects.get().item == item


@pytest.mark.parametrize(
    "item_id",
    [
        "abc",
        "1e9",
        "1 OR 1=1",
        "1; DROP TABLE inspections_judgment",
        "9" * 400,
        "9223372036854775808",
        "-1",
        "0",
        "",
        " 1",
        "1.0",
        "\u0663",  # ARABIC-INDIC DIGIT THREE: a digit to str.isdigit, not an id
        "1\x00",
        None,
    ],
)
def test_an_item_id_that_is_not_a_plain_number_is_a_400_with_a_clear_message(
    client_for, queue, inspector, item_id
):
    item = _item(queue, "a")
    item_assign_next(queue=queue, inspector=inspector)
    client = client_for(inspector)

    for extra in (HX, {}):
        response = _post(client, item_id, **extra)
        assert response.status_code == 400
        assert "item_id must be the number of the item on your screen" in response.content.decode()
    assert not Judgment.objects.exists()
    # The item on screen stays reserved for the inspector.
    assert Assignment.objects.filter(item=item, inspector=inspector).exists()


def test_a_label_the_queue_does_not_have_is_a_400(client_for, queue, inspector):
    item = _item(queue, "a")
    item_assign_next(queue=queue, inspector=inspector)

    response = _post(client_for(inspector), item.pk, label="seven")

    assert response.status_code == 400
    assert "is not a label of queue digits" in response.content.decode()
    assert not Judgment.objects.exists()
    assert _shown(response) == "a"


def test_the_time_spent_is_the_time_since_the_item_was_shown(client_for, queue, inspector):
    item = _item(queue, "a")
    item_assign_next(queue=queue, inspector=inspector)
    Assignment.objects.update(shown_at=timezone.now() - timedelta(seconds=7))

    response = _post(client_for(inspector), item.pk)

    assert response.status_code == 200
    assert Judgment.objects.get().seconds_spent == pytest.approx(7.0, abs=1.0)


def test_the_item_on_screen_is_judged_and_the_next_one_loads(client_for, queue, inspector):
    first = _item(queue, "first", minutes_ago=2)
    _item(queue, "second", minutes_ago=1)
    client = client_for(inspector)
    assert "first" in client.get("/inspect/digits/", **HX).content.decode()

    response = _post(client, first.pk, label="4")

    assert response.status_code == 200
    assert _shown(response) == "second"
    assert Judgment.objects.get().label == "4"
    # Posting the same item again (a double key press) is refused, and stores nothing more.
    assert _post(client, first.pk, label="5").status_code == 409
    assert list(Judgment.objects.values_list("label", flat=True)) == ["4"]


def test_a_double_inspected_item_is_judged_once_by_each_inspector_holding_it(
    client_for, queue, inspector, inspector2
):
    double = _item(queue, "double", needed=2)
    for who in (inspector, inspector2):
        assert item_assign_next(queue=queue, inspector=who) == double

    assert _post(client_for(inspector), double.pk, label="1").status_code == 200
    assert _post(client_for(inspector), double.pk, label="1").status_code == 409
    assert _post(client_for(inspector2), double.pk, label="2").status_code == 200

    double.refresh_from_db()
    assert (double.judgment_count, double.human_status) == (2, Item.HumanStatus.COMPLETE)


# Undo


def test_undo_withdraws_only_the_inspectors_own_recent_judgment_in_that_queue(
    client_for, queue, other_queue, inspector, inspector2
):
    theirs = _item(queue, "theirs")
    judgment_record(item=theirs, inspector=inspector2, label="1", seconds_spent=1.0)
    elsewhere = _item(other_queue, "elsewhere")
    judgment_record(item=elsewhere, inspector=inspector, label="ok", seconds_spent=1.0)
    client = client_for(inspector)

    # Nothing of theirs in this queue: a colleague's judgment and one in another queue stay.
    for extra in (HX, {}):
        response = client.post("/inspect/digits/undo", **extra)
        assert response.status_code == 409
        assert "Nothing to undo" in response.content.decode()
    assert Judgment.objects.count() == 2

    mine = _item(queue, "mine")
    item_assign_next(queue=queue, inspector=inspector)
    assert _post(client, mine.pk).status_code == 200
    undone = client.post("/inspect/digits/undo", **HX)
    assert undone.status_code == 200
    assert _shown(undone) == "mine"
    assert not Judgment.objects.filter(item=mine).exists()
    assert Judgment.objects.count() == 2


def test_a_judgment_past_the_undo_window_is_not_withdrawn(client_for, queue, inspector):
    item = _item(queue, "a")
    item_assign_next(queue=queue, inspector=inspector)
    client = client_for(inspector)
    assert _post(client, item.pk).status_code == 200
    Judgment.objects.update(created_at=timezone.now() - timedelta(seconds=31))

    response = client.post("/inspect/digits/undo", **HX)

    assert response.status_code == 409
    assert "judgments can be undone for 30 s" in response.content.decode()
    assert Judgment.objects.count() == 1
