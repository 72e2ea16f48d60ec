"""Adjudication: the service, the blind page, and who-was-right counts in the report."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import include, path
from django.utils import timezone
from statsmodels.stats.proportion import proportion_confint

import shadowlab.urls
from analytics import adjudication as adjudication_module
from analytics import urls as analytics_urls
from analytics import urls_adjudication
from analytics.adjudication import (
    AdjudicationRejected,
    adjudication_candidates,
    adjudication_delete,
    adjudication_record,
)
from analytics.disagreements import report_disagreements
from analytics.models import Adjudication
from analytics.selectors import ReportScope
from deployments.models import AuditEvent, ModelVersion, Prediction
from deployments.registry import model_version_register
from inspections.models import Item, Queue
from inspections.services import item_create, judgment_record

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

# analytics.urls includes the adjudication URLs once its author wires them in; until then
# (and harmlessly after) this test URLconf puts them in the analytics namespace itself.
urlpatterns = [
    path(
        "overview/",
        include(
            (urls_adjudication.urlpatterns + analytics_urls.urlpatterns, "analytics"),
            namespace="analytics",
        ),
    ),
    *(p for p in shadowlab.urls.urlpatterns if str(getattr(p, "pattern", "")) != "overview/"),
]

MODEL = "digits-mlp:1"
CONFIDENCE = 0.8731


def _disagreement(
    queue: Queue,
    model_version: ModelVersion,
    external_id: str,
    *,
    model_label: str,
    human_labels: list[str],
    inspectors: list[User],
    received_at=None,
) -> Item:
    """Return an item the model version scored model_label and inspectors judged human_labels."""
    item = item_create(
        queue=queue, external_id=external_id, features=[float(n % 17) for n in range(64)]
    )
    Item.objects.filter(pk=item.pk).update(
        judgments_needed=len(human_labels), received_at=received_at or timezone.now()
    )
    item.refresh_from_db()
    _predict(item, model_version, model_label)
    for label, inspector in zip(human_labels, inspectors, strict=False):
        judgment_record(item=item, inspector=inspector, label=label, seconds_spent=2)
    return item


def _predict(item: Item, model_version: ModelVersion, label: str) -> None:
    Prediction.objects.create(
        item=item,
        model_version=model_version,
        status=Prediction.Status.OK,
        label=label,
        confidence=CONFIDENCE,
        probabilities=None,
        latency_ms=1.0,
        backend="fp32",
    )


def _page_url(item: Item, model: str = MODEL) -> str:
    return f"/overview/{item.queue.slug}/adjudicate/{item.pk}/?model={model}"


def _section(page: str, element_id: str) -> str:
    found = re.search(rf'<div class="labels" id="{element_id}">(.*?)</div>', page, re.S)
    assert found is not None, element_id
    return found.group(1)


def _buttons(section: str) -> list[str]:
    return re.findall(r'<button type="submit" name="label" value="([^"]*)"', section)


@pytest.fixture
def disputed(queue, shadow_model, inspector) -> Item:
    return _disagreement(
        queue, shadow_model, "x1", model_label="5", human_labels=["3"], inspectors=[inspector]
    )


# --- the service -------------------------------------------------------------------------


def test_adjudication_is_recorded_with_an_audit_event(disputed, ml_lead):
    recorded = adjudication_record(item=disputed, adjudicator=ml_lead, label="5", note=" blur ")
    assert (recorded.label, recorded.adjudicator, recorded.note) == ("5", ml_lead, "blur")
    event = AuditEvent.objects.get(action="adjudication.record")
    assert event.actor == ml_lead
    assert event.subject_id == str(recorded.pk)
    assert event.after == {"item": disputed.pk, "label": "5", "note": "blur"}


def test_a_label_outside_the_queue_is_refused(disputed, ml_lead):
    with pytest.raises(AdjudicationRejected, match="not a label of queue 'digits'"):
        adjudication_record(item=disputed, adjudicator=ml_lead, label="cat")
    assert not Adjudication.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="adjudication").exists()


def test_a_second_adjudication_of_the_same_item_is_refused(disputed, ml_lead, admin_user):
    adjudication_record(item=disputed, adjudicator=ml_lead, label="5")
    with pytest.raises(AdjudicationRejected, match="already adjudicated as '5' by lead"):
        adjudication_record(item=disputed, adjudicator=admin_user, label="3")
    assert list(Adjudication.objects.values_list("label", flat=True)) == ["5"]
    assert AuditEvent.objects.filter(action="adjudication.record").count() == 1


def test_deleting_an_adjudication_is_audited_and_frees_the_item(disputed, ml_lead, admin_user):
    first = adjudication_record(item=disputed, adjudicator=ml_lead, label="5")
    adjudication_delete(adjudication=first, actor=admin_user)
    event = AuditEvent.objects.get(action="adjudication.delete")
    assert event.actor == admin_user and event.before["label"] == "5"
    assert adjudication_record(item=disputed, adjudicator=admin_user, label="3").label == "3"


# --- the page ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [(None, 302), ("outsider", 403), ("inspector", 403), ("ml_lead", 200), ("admin_user", 200)],
)
def test_only_ml_leads_and_admins_may_adjudicate(request, client_for, disputed, who, status):
    user = request.getfixturevalue(who) if who else None
    client = client_for(user)
    response = client.get(_page_url(disputed))
    assert response.status_code == status
    if who is None:
        assert response["Location"].startswith("/accounts/login/")
    posted = client.post(_page_url(disputed), {"label": "5"})
    assert posted.status_code == (302 if status in (200, 302) else 403)
    assert Adjudication.objects.exists() == (status == 200)
    following = client.get(f"/overview/digits/adjudicate/next/?model={MODEL}")
    assert following.status_code == (302 if status in (200, 302) else 403)


def test_the_page_never_reveals_which_candidate_is_the_models(
    client_for, queue, shadow_model, inspector, ml_lead, monkeypatch
):
    # Two items with swapped sources: the model said 5 and the inspector 3, then the reverse.
    first = _disagreement(
        queue, shadow_model, "a", model_label="5", human_labels=["3"], inspectors=[inspector]
    )
    swapped = _disagreement(
        queue, shadow_model, "b", model_label="3", human_labels=["5"], inspectors=[inspector]
    )
    client = client_for(ml_lead)
    pages = []
    for item in (first, swapped):
        monkeypatch.setattr(adjudication_module, "_CANDIDATE_RNG", random.Random(7))
        pages.append(client.get(_page_url(item)).content.decode())
    candidates = [_section(page, "candidates") for page in pages]
    others = [_section(page, "other-labels") for page in pages]
    assert candidates[0] == candidates[1]
    assert sorted(_buttons(candidates[0])) == ["3", "5"]
    assert others[0] == others[1]
    assert _buttons(others[0]) == [label for label in queue.labels if label not in ("3", "5")]
    for page, area in zip(pages, candidates, strict=True):
        for word in ("model", "prediction", "confidence", "human", "inspector", "machine"):
            assert word not in area.lower()
        # Nothing else on the page names the source either: the version's key is only the
        # hidden form field, and neither the confidence nor the inspector is shown.
        visible = re.sub(r'<input type="hidden" name="model" value="[^"]*">', "", page)
        for leak in ("digits-mlp", str(CONFIDENCE), "87.3", "87%", inspector.username):
            assert leak not in visible
        assert not re.search(r"\bprediction|\bconfidence|\bshadow\b", visible, re.I)


def test_candidates_of_a_double_inspected_item_are_the_distinct_labels(
    queue, shadow_model, inspector, inspector2
):
    item = _disagreement(
        queue,
        shadow_model,
        "d",
        model_label="5",
        human_labels=["3", "5"],
        inspectors=[inspector, inspector2],
    )
    offer = adjudication_candidates(item=item, model_version=shadow_model, rng=random.Random(1))
    assert offer is not None
    assert sorted(label for label, _ in offer.candidates) == ["3", "5"]
    assert [key for _, key in offer.candidates] == [label for label, _ in offer.candidates]


def test_candidate_order_varies_with_the_random_draw(
    client_for, disputed, shadow_model, ml_lead, monkeypatch
):
    orders = set()
    for seed in range(20):
        offer = adjudication_candidates(
            item=disputed, model_version=shadow_model, rng=random.Random(seed)
        )
        assert offer is not None
        orders.add(tuple(label for label, _ in offer.candidates))
    assert orders == {("3", "5"), ("5", "3")}
    # The page takes its order from the module's generator.
    client = client_for(ml_lead)
    seen = set()
    for seed in range(20):
        monkeypatch.setattr(adjudication_module, "_CANDIDATE_RNG", random.Random(seed))
        page = client.get(_page_url(disputed)).content.decode()
        seen.add(tuple(_buttons(_section(page, "candidates"))))
    assert seen == {("3", "5"), ("5", "3")}


def test_an_item_the_model_agrees_with_is_not_offered(
    client_for, queue, shadow_model, inspector, ml_lead
):
    agreed = _disagreement(
        queue, shadow_model, "ok", model_label="4", human_labels=["4"], inspectors=[inspector]
    )
    assert client_for(ml_lead).get(_page_url(agreed)).status_code == 404


def test_post_goes_to_the_next_disagreement_then_back_to_the_list(
    client_for, queue, shadow_model, inspector, ml_lead
):
    now = timezone.now()
    older, newer = (
        _disagreement(
            queue,
            shadow_model,
            name,
            model_label="5",
            human_labels=["3"],
            inspectors=[inspector],
            received_at=now - timedelta(minutes=minutes),
        )
        for name, minutes in (("older", 10), ("newer", 5))
    )
    client = client_for(ml_lead)
    next_url = f"/overview/digits/adjudicate/next/?model={MODEL.replace(':', '%3A')}"

    posted = client.post(_page_url(newer), {"label": "3", "note": "clear 3"})
    assert posted.status_code == 302 and posted["Location"] == next_url
    assert Adjudication.objects.get(item=newer).note == "clear 3"
    following = client.get(posted["Location"])
    assert following["Location"] == f"/overview/digits/adjudicate/{older.pk}/?model=digits-mlp%3A1"

    posted = client.post(following["Location"], {"label": "9"})  # neither: "both wrong"
    assert Adjudication.objects.get(item=older).label == "9"
    done = client.get(posted["Location"])
    assert done.status_code == 302
    assert done["Location"] == "/overview/digits/disagreements/?model=digits-mlp%3A1"


def test_without_a_model_parameter_the_first_shadow_version_is_used(client_for, disputed, ml_lead):
    response = client_for(ml_lead).get(f"/overview/digits/adjudicate/{disputed.pk}/")
    assert response.status_code == 200
    assert sorted(_buttons(_section(response.content.decode(), "candidates"))) == ["3", "5"]


def test_a_second_post_on_an_adjudicated_item_is_refused_on_the_page(
    client_for, disputed, ml_lead, admin_user
):
    client_for(ml_lead).post(_page_url(disputed), {"label": "5"})
    response = client_for(admin_user).post(_page_url(disputed), {"label": "3"})
    assert response.status_code == 409
    assert "already adjudicated" in response.content.decode()
    assert Adjudication.objects.get(item=disputed).label == "5"


# --- counts ------------------------------------------------------------------------------


@pytest.fixture
def adjudicated(queue, shadow_model, digits_onnx, admin_user, inspector, inspector2, ml_lead):
    """Items with known model, human and adjudicated labels, and a second version on two."""
    second = model_version_register(
        queue=queue, name="digits-mlp", version="2", onnx_path=digits_onnx, created_by=admin_user
    )
    both = [inspector, inspector2]

    def make(name, model, humans, truth, **extra):
        item = _disagreement(
            queue,
            shadow_model,
            name,
            model_label=model,
            human_labels=humans,
            inspectors=both,
            **extra,
        )
        if truth is not None:
            adjudication_record(item=item, adjudicator=ml_lead, label=truth)
        return item

    i1 = make("i1", "5", ["3"], "5")  # model right
    i2 = make("i2", "5", ["3"], "3")  # human right
    make("i3", "5", ["3"], "7")  # both wrong
    make("i4", "5", ["3", "4"], "4")  # 3 vs 5: both wrong; 4 vs 5: human right
    make("i5", "5", ["5", "2"], "5")  # 5 vs 5 agrees (ignored); 2 vs 5: model right
    make("i6", "5", ["3"], None)  # awaiting adjudication
    make("i7", "5", ["5"], "6")  # an agreement, adjudicated anyway: not a disagreement
    make("old", "5", ["3"], "5", received_at=timezone.now() - timedelta(days=40))  # out of range
    _predict(i1, second, "3")  # agrees with the inspector
    _predict(i2, second, "9")  # inspector right against version 2
    return shadow_model, second


def test_outcome_counts_equal_a_hand_count(client_for, ml_lead, adjudicated):
    body = (
        client_for(ml_lead)
        .get(f"/api/v1/queues/digits/reports/disagreements?model={MODEL}")
        .json()["report"]["adjudication"]
    )
    assert "each judgment compared separately" in body["rule_text"]
    assert (body["model_right"], body["human_right"], body["both_wrong"]) == (2, 2, 2)
    assert body["comparisons"] == 6
    assert (body["items_adjudicated"], body["judgments_awaiting"]) == (5, 1)
    for side, right in (("model_accuracy", 2), ("human_accuracy", 2)):
        figure = body[side]
        assert (figure["n"], figure["agreed"]) == (6, right)
        assert figure["rate"] == pytest.approx(right / 6)
        low, high = proportion_confint(right, 6, method="wilson")
        assert (figure["low"], figure["high"]) == (pytest.approx(low), pytest.approx(high))


def test_outcome_counts_use_only_the_chosen_versions_label(adjudicated, queue):
    _, second = adjudicated
    today = timezone.now().date()
    scope = ReportScope(
        queue=queue, model_version=second, since=today - timedelta(days=6), until=today
    )
    outcomes = report_disagreements(scope=scope).adjudication
    assert (outcomes.model_right, outcomes.human_right, outcomes.both_wrong) == (0, 1, 0)
    assert (outcomes.items_adjudicated, outcomes.judgments_awaiting) == (1, 0)
    assert outcomes.model_accuracy.n == 1 and outcomes.model_accuracy.rate == 0.0


def test_no_adjudication_gives_empty_counts_and_whole_intervals(queue, shadow_model):
    today = timezone.now().date()
    scope = ReportScope(queue=queue, model_version=shadow_model, since=today, until=today)
    outcomes = report_disagreements(scope=scope).adjudication
    assert outcomes.comparisons == 0
    assert (outcomes.model_accuracy.low, outcomes.model_accuracy.high) == (0.0, 1.0)


def test_ml_leads_read_adjudications_in_the_admin_but_cannot_change_them(
    client_for, disputed, ml_lead
):
    recorded = adjudication_record(item=disputed, adjudicator=ml_lead, label="5")
    client = client_for(ml_lead)
    assert client.get("/admin/analytics/adjudication/").status_code == 200
    page = client.get(f"/admin/analytics/adjudication/{recorded.pk}/change/")
    assert page.status_code == 200 and 'name="label"' not in page.content.decode()
    assert client.post(f"/admin/analytics/adjudication/{recorded.pk}/delete/").status_code == 403
    assert Adjudication.objects.filter(pk=recorded.pk).exists()
