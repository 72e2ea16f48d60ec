"""The policy's canary and automatic-rollback fields: checked, stored, shown and edited."""

from __future__ import annotations

import json

import pytest

from analytics.gate.policy import (
    FIELD_RULES,
    GatePolicyInvalid,
    gate_policy_current,
    gate_policy_document,
    gate_policy_update,
)
from analytics.models import GatePolicy
from deployments.models import AuditEvent
from tests.analytics.test_gate_policy_page import _form

pytestmark = pytest.mark.django_db

PAGE = "/rollout/digits/policy/"
API = "/api/v1/queues/digits/gate-policy"


def test_the_document_holds_the_rollout_fields_with_their_defaults(queue):
    document = gate_policy_document(gate_policy_current(queue=queue))
    assert document["canary_steps"] == [0.05, 0.25, 0.5, 1.0]
    assert document["auto_advance"] is False
    assert (document["soak_minutes"], document["rollback_window_minutes"]) == (60, 60)
    assert (document["rollback_min_audited"], document["rollback_min_decisions"]) == (100, 200)
    assert document["rollback_max_error_rate"] == 0.05
    assert document["rollback_latency_p95_ms"] == 100.0
    assert document["rollback_drifted_share_max"] == 0.5


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("canary_steps", 0.5, "must be a list of 1 to 10 shares"),
        ("canary_steps", "0.05, 1", "must be a list"),
        ("canary_steps", None, "may not be null"),
        ("canary_steps", [], "must hold 1 to 10 steps, got 0"),
        ("canary_steps", [0.01 * k for k in range(1, 11)] + [1.0], "got 11"),
        ("canary_steps", [0.5, 0.25, 1.0], r"step 2 \(0.25\) is not above step 1 \(0.5\)"),
        ("canary_steps", [0.25, 0.25, 1.0], "larger than the one before"),
        ("canary_steps", [0.05, 0.5], "the last step must be 1"),
        ("canary_steps", [0, 1.0], r"step 1: 0 is not in \(0, 1\]"),
        ("canary_steps", [0.5, 1.5], r"step 2: 1.5 is not in \(0, 1\]"),
        ("canary_steps", [True, 1.0], "step 1 must be a share"),
        ("canary_steps", ["0.5", 1.0], "step 1 must be a share"),
        ("canary_steps", [float("nan"), 1.0], "step 1 must be a share"),
        ("auto_advance", "yes", "true or false"),
        ("auto_advance", None, "may not be null"),
        ("soak_minutes", 0, r"not in \[1, 10080\]"),
        ("soak_minutes", 10081, "not in"),
        ("soak_minutes", 1.5, "whole number"),
        ("rollback_window_minutes", 0, "not in"),
        ("rollback_window_minutes", None, "may not be null"),
        ("rollback_min_audited", 0, "not in"),
        ("rollback_min_audited", None, "may not be null"),
        ("rollback_min_decisions", 0, "not in"),
        ("rollback_min_decisions", 2_000_000_000, "not in"),
        ("rollback_max_error_rate", 1.5, "not in"),
        ("rollback_max_error_rate", "0.1", "must be a number"),
        ("rollback_latency_p95_ms", 0, "not in"),
        ("rollback_latency_p95_ms", float("inf"), "finite"),
        ("rollback_drifted_share_max", -0.1, "not in"),
    ],
)
def test_each_invalid_rollout_value_is_refused_naming_its_field(
    queue, admin_user, field, value, message
):
    gate_policy_current(queue=queue)
    with pytest.raises(GatePolicyInvalid, match=message) as refused:
        gate_policy_update(queue=queue, values={field: value}, actor=admin_user)
    assert refused.value.field == field
    assert GatePolicy.objects.filter(queue=queue).count() == 1
    assert not AuditEvent.objects.exists()


def test_rollout_edits_are_stored_as_a_version_and_null_switches_a_rollback_check_off(
    queue, admin_user
):
    policy = gate_policy_update(
        queue=queue,
        values={
            "canary_steps": [0.01, 0.1, 1],
            "auto_advance": True,
            "soak_minutes": 10080,
            "rollback_window_minutes": 1,
            "rollback_min_audited": 1,
            "rollback_min_decisions": 1,
            "rollback_max_error_rate": None,
            "rollback_latency_p95_ms": None,
            "rollback_drifted_share_max": 0,
        },
        actor=admin_user,
    )
    policy.refresh_from_db()
    assert policy.version == 2
    assert policy.canary_steps == [0.01, 0.1, 1.0]
    assert all(isinstance(step, float) for step in policy.canary_steps)
    assert (policy.auto_advance, policy.soak_minutes, policy.rollback_window_minutes) == (
        True,
        10080,
        1,
    )
    assert (policy.rollback_max_error_rate, policy.rollback_latency_p95_ms) == (None, None)
    assert policy.rollback_drifted_share_max == 0.0
    event = AuditEvent.objects.get(action="gate_policy.update")
    assert event.before["canary_steps"] == [0.05, 0.25, 0.5, 1.0]
    assert event.after["canary_steps"] == [0.01, 0.1, 1.0]


def test_one_step_of_one_goes_straight_to_live(queue, admin_user):
    policy = gate_policy_update(queue=queue, values={"canary_steps": [1]}, actor=admin_user)
    assert policy.canary_steps == [1.0]


def test_the_same_steps_sent_back_make_no_version(queue, admin_user):
    gate_policy_current(queue=queue)
    policy = gate_policy_update(
        queue=queue, values={"canary_steps": [0.05, 0.25, 0.5, 1]}, actor=admin_user
    )
    assert policy.version == 1


def test_the_page_groups_the_new_fields_under_canary_and_automatic_rollback(
    queue, client_for, admin_user
):
    html = client_for(admin_user).get(PAGE).content.decode()

    canary = html.index("<h3>Canary</h3>")
    rollback = html.index("<h3>Automatic rollback</h3>")
    assert html.index('name="agreement_floor"') < canary < html.index('name="canary_steps"')
    assert html.index('name="soak_minutes"') < rollback < html.index('name="rollback_min_audited"')
    assert 'name="canary_steps" value="0.05, 0.25, 0.5, 1"' in html
    assert 'name="rollback_window_minutes" value="60"' in html
    assert "How a promoted version takes over items" in html
    assert "Every minute a monitor reads each canary and live version" in html


def test_an_admin_edits_the_steps_as_text_and_the_history_lists_them(queue, client_for, admin_user):
    client = client_for(admin_user)
    form = _form(gate_policy_current(queue=queue), rollback_latency_p95_ms=None)
    form["canary_steps"] = "0.1, 0.5 1"

    response = client.post(PAGE, form)

    assert response.status_code == 302
    policy = gate_policy_current(queue=queue)
    assert (policy.version, policy.canary_steps) == (2, [0.1, 0.5, 1.0])
    assert policy.rollback_latency_p95_ms is None
    html = client.get(PAGE).content.decode()
    assert "canary_steps: 0.05, 0.25, 0.5, 1 → 0.1, 0.5, 1" in html
    assert "rollback_latency_p95_ms: 100 → off" in html


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("0.5, 0.25, 1", "each step must be larger than the one before"),
        ("0.05, 0.5", "the last step must be 1"),
        ("five percent, 1", "Enter shares separated by commas, such as 0.05, 0.25, 0.5, 1."),
        ("", "This field is required."),
    ],
)
def test_bad_steps_on_the_page_are_a_400_next_to_the_field(
    queue, client_for, admin_user, steps, message
):
    form = _form(gate_policy_current(queue=queue), soak_minutes=0)
    form["canary_steps"] = steps

    response = client_for(admin_user).post(PAGE, form)

    assert response.status_code == 400
    html = response.content.decode()
    errors = html[html.index('id="canary_steps-errors"') :]
    assert message in errors[: errors.index("</ul>")]
    assert 'id="soak_minutes-errors"><li>0 is not in [1, 10080]</li>' in html
    assert GatePolicy.objects.count() == 1


def test_an_ml_lead_reads_the_rollout_values_in_their_sections(queue, client_for, ml_lead):
    html = client_for(ml_lead).get(PAGE).content.decode()
    assert (
        '<tr data-field="canary_steps"><th scope="row">Canary steps</th>'
        '<td class="num">0.05, 0.25, 0.5, 1</td>'
    ) in html
    assert '<tr data-field="auto_advance"><th scope="row">Advance by itself</th>' in html
    assert html.index("<h3>Automatic rollback</h3>") < html.index(
        'data-field="rollback_max_error_rate"'
    )


def test_the_api_round_trips_the_rollout_fields_and_refuses_bad_ones_with_a_400(
    queue, client_for, admin_user
):
    client = client_for(admin_user)
    document = client.get(API).json()
    assert set(FIELD_RULES) <= set(document)

    edited = client.put(
        API,
        json.dumps({**document, "canary_steps": [0.2, 1], "rollback_min_decisions": 50}),
        content_type="application/json",
    )
    assert edited.status_code == 200
    assert (edited.json()["canary_steps"], edited.json()["rollback_min_decisions"]) == (
        [0.2, 1.0],
        50,
    )

    refused = client.put(
        API,
        json.dumps({"canary_steps": [0.5, 0.4, 1]}),
        content_type="application/json",
    )
    assert refused.status_code == 400
    assert refused.json()["field"] == "canary_steps"
    assert "larger than the one before" in refused.json()["detail"]
    too_soon = client.put(
        API, json.dumps({"rollback_window_minutes": 0}), content_type="application/json"
    )
    assert too_soon.status_code == 400
    assert too_soon.json()["field"] == "rollback_window_minutes"
    assert GatePolicy.objects.count() == 2
