"""Setting a queue's deferral threshold: admins only, audited, and every web process told."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied

from analytics import services
from deployments.deferral import queue_deferral_threshold_set
from deployments.models import AuditEvent, RolloutControl
from inspections.models import Queue
from tests.analytics.audit_data import audit_data_build, audit_data_populate
from tests.deployments.rollout_factories import version_make

pytestmark = pytest.mark.django_db

API = "/api/v1/queues/digits/deferral-threshold"
POST = "/overview/digits/deferral-threshold"


def _routing_version(queue: Queue) -> int:
    control = RolloutControl.objects.filter(queue=queue).first()
    return control.routing_version if control else 0


def test_an_admin_sets_the_threshold_with_an_audit_event_and_a_new_routing_version(
    queue, admin_user
):
    before = _routing_version(queue)

    queue_deferral_threshold_set(
        queue=queue, threshold=0.83, actor=admin_user, evidence="confidence report of m:1"
    )

    queue.refresh_from_db()
    assert queue.deferral_threshold == 0.83
    assert _routing_version(queue) == before + 1
    event = AuditEvent.objects.get()
    assert event.action == "deferral_threshold.set"
    assert event.actor == admin_user and event.queue_id == queue.pk
    assert event.before == {"deferral_threshold": 0.0}
    assert event.after == {"deferral_threshold": 0.83}
    assert event.evidence == "confidence report of m:1"


def test_setting_the_threshold_in_force_changes_and_records_nothing(queue, admin_user):
    queue_deferral_threshold_set(queue=queue, threshold=0.5, actor=admin_user)
    version = _routing_version(queue)
    queue_deferral_threshold_set(queue=queue, threshold="0.5", actor=admin_user)
    assert AuditEvent.objects.count() == 1
    assert _routing_version(queue) == version


@pytest.mark.parametrize("who", ["ml_lead", "inspector", "outsider"])
def test_no_one_but_an_admin_may_set_it(request, queue, who):
    user = request.getfixturevalue(who)
    with pytest.raises(PermissionDenied, match="admin role"):
        queue_deferral_threshold_set(queue=queue, threshold=0.9, actor=user)
    queue.refresh_from_db()
    assert queue.deferral_threshold == 0.0
    assert not AuditEvent.objects.exists()
    assert _routing_version(queue) == 0


@pytest.mark.parametrize("bad", [-0.1, 1.01, math.nan, math.inf, "abc", "", True, None, [0.5]])
def test_a_bad_threshold_is_refused_with_the_reason_and_changes_nothing(queue, admin_user, bad):
    with pytest.raises(ValueError, match="deferral threshold must"):
        queue_deferral_threshold_set(queue=queue, threshold=bad, actor=admin_user)
    queue.refresh_from_db()
    assert queue.deferral_threshold == 0.0
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("value", [0, 0.0, 1, 0.955, "0.7"])
def test_every_value_from_zero_to_one_is_taken(queue, admin_user, value):
    queue_deferral_threshold_set(queue=queue, threshold=value, actor=admin_user)
    queue.refresh_from_db()
    assert queue.deferral_threshold == float(value)


# --- the JSON API --------------------------------------------------------------------------


def test_an_admin_puts_the_threshold_over_the_api(client_for, queue, admin_user):
    response = client_for(admin_user).put(
        API, json.dumps({"threshold": 0.9, "evidence": "by hand"}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"queue": "digits", "deferral_threshold": 0.9, "routing_version": 1}
    assert AuditEvent.objects.get().evidence == "by hand"
    read = client_for(admin_user).get(API).json()
    assert read["deferral_threshold"] == 0.9


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"threshold": 1.5}, "less than or equal to 1"),
        ({"threshold": -0.5}, "greater than or equal to 0"),
        ({"threshold": "0.5"}, "threshold"),
        ({"threshold": True}, "threshold"),
        ({"threshold": None}, "threshold"),
        ({}, "threshold"),
        ({"threshold": 0.5, "evidence": "x" * 101}, "evidence"),
    ],
)
def test_a_bad_body_is_a_400_with_a_sentence(client_for, queue, admin_user, body, message):
    response = client_for(admin_user).put(API, json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["detail"]
    queue.refresh_from_db()
    assert queue.deferral_threshold == 0.0
    assert not AuditEvent.objects.exists()


def test_a_threshold_that_is_not_a_finite_number_is_a_400(client_for, queue, admin_user):
    response = client_for(admin_user).put(
        API, '{"threshold": NaN}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not AuditEvent.objects.exists()


def test_the_api_needs_the_csrf_token_of_the_session(queue, admin_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    response = client.put(API, json.dumps({"threshold": 0.9}), content_type="application/json")
    assert response.status_code in (401, 403)
    queue.refresh_from_db()
    assert queue.deferral_threshold == 0.0


# --- the confidence report's action --------------------------------------------------------


def _form(**values: object) -> dict[str, object]:
    today = services.utc_today()
    return {
        "model": "digits-mlp:1",
        "since": (today - timedelta(days=6)).isoformat(),
        "until": today.isoformat(),
        "sample": "audit",
        **values,
    }


def test_an_admin_uses_a_threshold_from_the_confidence_report(client_for, queue, admin_user):
    version_make(queue, "1")
    client = client_for(admin_user)

    response = client.post(POST, _form(threshold="0.87"))

    assert response.status_code == 302
    today = services.utc_today()
    assert response["Location"] == (
        f"/overview/digits/confidence/?model=digits-mlp%3A1&since={today - timedelta(days=6)}"
        f"&until={today}&sample=audit#deferral"
    )
    queue.refresh_from_db()
    assert queue.deferral_threshold == 0.87
    event = AuditEvent.objects.get()
    assert event.evidence.startswith("confidence report of digits-mlp:1")
    page = client.get(response["Location"]).content.decode()
    assert '<strong id="deferral-threshold">0.87</strong>' in page
    assert "The deferral threshold of Digits is 0.87." in page


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"threshold": "1.2"}, "from 0 (defer nothing) to 1"),
        ({"threshold": "lots"}, "must be a number from 0 to 1"),
        ({"threshold": ""}, "must be a number from 0 to 1"),
        ({"threshold": "nan"}, "from 0 (defer nothing) to 1"),
        ({"threshold": "0.5", "sample": "some"}, "sample must be"),
        ({"threshold": "0.5", "since": "soon"}, "ISO date"),
        ({"threshold": "0.5", "model": "nope:9"}, "model must name a version"),
    ],
)
def test_a_bad_form_is_a_400_with_the_reason(client_for, queue, admin_user, values, message):
    version_make(queue, "1")
    response = client_for(admin_user).post(POST, _form(**values))
    assert response.status_code == 400
    assert message in response.content.decode()
    queue.refresh_from_db()
    assert queue.deferral_threshold == 0.0
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("who", ["ml_lead", "inspector"])
def test_leads_and_inspectors_cannot_use_the_action(request, client_for, queue, who):
    version_make(queue, "1")
    response = client_for(request.getfixturevalue(who)).post(POST, _form(threshold="0.5"))
    assert response.status_code == 403
    queue.refresh_from_db()
    assert queue.deferral_threshold == 0.0


def test_the_confidence_report_shows_the_threshold_its_figures_and_suggestions(
    client_for, admin_user, ml_lead
):
    data = audit_data_build(slug="parts-deferral")
    today = services.utc_today()
    audit_data_populate(
        data, seed=21, n=400, days=[today], inspector_accuracy=0.99, model_boost=0.3
    )
    Queue.objects.filter(pk=data.queue.pk).update(deferral_threshold=0.6)
    url = f"/overview/parts-deferral/confidence/?model=m:1&since={today}&until={today}"

    admin_page = client_for(admin_user).get(url).content.decode()
    body = client_for(admin_user).get(
        f"/api/v1/queues/parts-deferral/reports/confidence?model=m:1&since={today}&until={today}"
    )
    deferral = body.json()["report"]["deferral"]
    current = deferral["current"]
    assert current["threshold"] == 0.6 and current["exact"]
    # The coverage curve's point at 0.60, as the chart shows it.
    assert current["covered"] == body.json()["report"]["coverage_items"][60]
    assert '<strong id="deferral-threshold">0.6</strong>' in admin_page
    assert f"The model would decide {current['covered']} of the {current['n']} items" in admin_page
    suggested = [s for s in deferral["suggestions"] if s["figures"]]
    assert suggested
    for suggestion in suggested:
        value = f"{suggestion['figures']['threshold']:.2f}"
        assert f'name="threshold" value="{value}"' in admin_page
    assert admin_page.count(">Use this threshold</button>") == len(suggested) + 1
    assert 'src="/static/js/deferral.js"' in admin_page
    assert 'id="deferral-curve"' in admin_page

    lead_page = client_for(ml_lead).get(url).content.decode()
    assert '<strong id="deferral-threshold">0.6</strong>' in lead_page
    assert "Use this threshold" not in lead_page
    assert "Only an admin can change the threshold." in lead_page
    assert "deferral.js" not in lead_page


def test_on_the_audit_sample_the_report_says_lower_thresholds_are_not_seen(client_for, admin_user):
    data = audit_data_build(slug="parts-deferral")
    today = services.utc_today()
    audit_data_populate(data, seed=22, n=200, days=[today])
    page = client_for(admin_user).get(
        f"/overview/parts-deferral/confidence/?model=m:1&since={today}&until={today}&sample=audit"
    )
    assert "none it deferred" in page.content.decode()
    assert 'name="sample" value="audit"' in page.content.decode()


def test_the_django_admin_shows_the_threshold_but_cannot_change_it_unaudited(
    client_for, queue, admin_user
):
    page = client_for(admin_user).get(f"/admin/inspections/queue/{queue.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Deferral threshold" in html
    assert 'name="deferral_threshold"' not in html
    add = client_for(admin_user).get("/admin/inspections/queue/add/").content.decode()
    assert 'name="deferral_threshold"' in add
