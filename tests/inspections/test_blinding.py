"""Inspectors are blind to the shadow model: no page or fragment they reach carries its output."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from deployments.models import Prediction
from deployments.scoring import predictions_score
from inspections.models import Item
from inspections.services import api_token_create, item_assign_next, item_create

pytestmark = pytest.mark.django_db

FORBIDDEN_WORDS = ("confidence", "probabilit", "prediction", "agreement", "model", "kappa")
HX = {"HTTP_HX_REQUEST": "true"}


def _number_shown(text: str, number: str) -> bool:
    """Whether the number appears on its own, not as part of a longer one (ids, timestamps)."""
    return re.search(rf"(?<![\d.]){re.escape(number)}(?![\d])", text) is not None


def _ways_to_show(confidence: float) -> set[str]:
    shown = {
        f"{confidence:.6f}".rstrip("0"),
        f"{confidence:.3f}",
        f"{confidence:.2f}",
        f"{100 * confidence:.0f}%",
        f"{100 * confidence:.1f}%",
        repr(confidence),
    }
    # "1." or "0." name no figure; the longer forms of the same confidence are checked.
    return {text for text in shown if len(text) >= 4}


def _everything_sent(response) -> str:
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    return f"{headers}\n\n{response.content.decode()}"


def _assert_blind(response, predictions: list[Prediction], where: str) -> None:
    sent = _everything_sent(response)
    lowered = sent.lower()
    for word in FORBIDDEN_WORDS:
        assert word not in lowered, f"{where} mentions '{word}'"
    assert "<!--" not in sent, f"{where} carries an HTML comment"
    for prediction in predictions:
        if prediction.confidence is None:
            continue
        for text in _ways_to_show(prediction.confidence):
            assert not _number_shown(sent, text), f"{where} shows a confidence as {text!r}"
        for probability in sorted(prediction.probabilities or [])[-3:-1]:
            for text in _ways_to_show(probability):
                assert not _number_shown(sent, text), f"{where} shows a probability as {text!r}"


@pytest.fixture
def scored_items(queue, other_queue, shadow_model, digit_rows) -> list[Item]:
    """Thirty scored digits; their predictions differ in label and confidence."""
    items = [
        item_create(queue=queue, external_id=f"digit-{n}", features=[float(v) for v in row])
        for n, row in enumerate(digit_rows[:30])
    ]
    summary = predictions_score(model_version_id=shadow_model.pk, item_ids=[i.pk for i in items])
    assert summary.scored == 30
    predictions = Prediction.objects.filter(model_version=shadow_model)
    assert len({p.label for p in predictions}) >= 5
    assert any((p.confidence or 1.0) < 0.9 for p in predictions)
    return items


def test_inspector_never_sees_model_output(client_for, inspector, queue, scored_items):
    predictions = list(Prediction.objects.all())
    client = client_for(inspector)
    token = api_token_create(queue=queue, name="blinding")[1]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    first = item_assign_next(queue=queue, inspector=inspector)
    responses = {
        "home redirect": client.get("/"),
        "queues page": client.get("/inspect/"),
        "inspect page": client.get("/inspect/digits/"),
        "inspect fragment": client.get("/inspect/digits/", **HX),
        "judge fragment": client.post(
            "/inspect/digits/judge", {"item_id": first.pk, "label": "4"}, **HX
        ),
        "judge fragment with a refused label": client.post(
            "/inspect/digits/judge", {"item_id": first.pk, "label": "x"}, **HX
        ),
        "undo fragment": client.post("/inspect/digits/undo", **HX),
        "judge redirect": client.post("/inspect/digits/judge", {"item_id": first.pk, "label": "4"}),
        "page after judging": client.get("/inspect/digits/"),
        "history page": client.get("/inspect/history/"),
        "undo redirect": client.post("/inspect/digits/undo"),
        "API item read": api.get(f"/api/v1/items/{first.pk}"),
    }
    for where, response in responses.items():
        expected = (400,) if "refused" in where else (200, 302)
        assert response.status_code in expected, f"{where}: {response.status_code}"
        _assert_blind(response, predictions, where)
    # The judged item, its label and the undo offer really were on the pages checked.
    assert first.external_id in responses["judge fragment"].content.decode()
    assert first.external_id in responses["history page"].content.decode()
    assert "Undo last" in responses["judge fragment"].content.decode()
    assert "Judgment withdrawn" in responses["undo fragment"].content.decode()
    assert responses["API item read"].json()["external_id"] == first.external_id


def test_the_empty_queue_page_is_blind_too(client_for, inspector, queue, scored_items):
    Item.objects.update(human_status=Item.HumanStatus.COMPLETE)
    response = client_for(inspector).get("/inspect/digits/")
    assert "Nothing left to inspect" in response.content.decode()
    _assert_blind(response, list(Prediction.objects.all()), "empty queue page")


def _normalized(html: str, item: Item, username: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)
    html = re.sub(r'name="item_id" value="\d+"', "ITEM_ID", html)
    html = html.replace(item.external_id, "EXTERNAL_ID")
    return html.replace(username, "USERNAME")


def test_two_items_the_model_scores_differently_render_identically(
    client_for, inspector, inspector2, queue, shadow_model, digit_rows
):
    # Twins: the same image under two ids, so that anything which differs on their pages
    # can only come from elsewhere. Then the model is made to disagree about them.
    features = [float(v) for v in digit_rows[0]]
    twin_a = item_create(queue=queue, external_id="twin-a", features=features)
    twin_b = item_create(queue=queue, external_id="twin-b", features=features)
    predictions_score(model_version_id=shadow_model.pk, item_ids=[twin_a.pk, twin_b.pk])
    said_a = Prediction.objects.get(item=twin_a)
    other_label = next(label for label in queue.labels if label != said_a.label)
    probabilities = [0.05] * 10
    probabilities[queue.labels.index(other_label)] = 0.55
    Prediction.objects.filter(item=twin_b).update(
        label=other_label, confidence=0.55, probabilities=probabilities
    )
    assert Prediction.objects.get(item=twin_b).label != said_a.label

    # Each inspector is served one twin: the first reservation keeps twin-a from the second.
    pages = {}
    for who, twin in ((inspector, twin_a), (inspector2, twin_b)):
        client = client_for(who)
        full = client.get("/inspect/digits/").content.decode()
        fragment = client.get("/inspect/digits/", **HX).content.decode()
        assert twin.external_id in full and twin.external_id in fragment
        pages[twin.external_id] = (
            _normalized(full, twin, who.username),
            _normalized(fragment, twin, who.username),
        )

    assert pages["twin-a"][0] == pages["twin-b"][0]
    assert pages["twin-a"][1] == pages["twin-b"][1]
    # The predicted label is on the page only as one of the ten ordinary label buttons.
    for label in queue.labels:
        assert pages["twin-a"][1].count(f'value="{label}"') == 1
    shown = [*pages["twin-a"], *pages["twin-b"]]
    for prediction in Prediction.objects.filter(item__in=[twin_a, twin_b]):
        for text in _ways_to_show(prediction.confidence):
            assert not any(_number_shown(page, text) for page in shown)


def test_an_audit_sample_looks_like_any_other_item_to_its_inspector(
    client_for, inspector, inspector2, queue, model_version, admin_user, digit_rows, settings
):
    from deployments.models import Decision
    from deployments.rollout import kill_switch_set
    from tests.deployments.rollout_factories import queue_quiet, rollout_live

    # The model decides one twin and sends it for a blind audit; the other twin, with the
    # same image, only inspectors decide (the kill switch is on when it arrives).
    settings.SHADOWLAB = {**settings.SHADOWLAB, "LIVE_BUDGET_MS": 10_000.0}  # no stall fallback
    queue_quiet(queue, audit_rate=1.0)
    rollout_live(model_version)
    features = [float(v) for v in digit_rows[0]]
    audited = item_create(queue=queue, external_id="twin-a", features=features)
    kill_switch_set(queue=queue, on=True, actor=admin_user)
    plain = item_create(queue=queue, external_id="twin-b", features=features)
    assert (audited.route, audited.audit_sample, audited.human_status) == ("model", True, "pending")
    assert (plain.route, plain.audit_sample, plain.route_note) == ("human", False, "kill switch on")
    decision = Decision.objects.get(item=audited)

    pages = {}
    for who, twin in ((inspector, audited), (inspector2, plain)):
        client = client_for(who)
        full = client.get("/inspect/digits/").content.decode()
        fragment = client.get("/inspect/digits/", **HX).content.decode()
        assert twin.external_id in full and twin.external_id in fragment
        pages[twin.external_id] = (
            _normalized(full, twin, who.username),
            _normalized(fragment, twin, who.username),
        )
        for html in (full, fragment):
            lowered = html.lower()
            for word in (*FORBIDDEN_WORDS, "audit", "kill switch", "route"):
                assert word not in lowered
            for text in _ways_to_show(decision.confidence):
                assert not _number_shown(html, text)
    assert pages["twin-a"] == pages["twin-b"]

    # Judged, the audit sample shows in the inspector's history like any other item.
    client = client_for(inspector)
    judged = client.post(
        "/inspect/digits/judge", {"item_id": audited.pk, "label": decision.label}, **HX
    )
    history = client.get("/inspect/history/")
    for response in (judged, history):
        _assert_blind(response, [], "after judging an audit sample")
    assert audited.external_id in history.content.decode()
