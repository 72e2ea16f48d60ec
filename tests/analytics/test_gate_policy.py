"""A queue's gate policy: defaults on first read, one version and one audit event per edit."""

from __future__ import annotations

import pytest

from analytics.gate.inputs import GatePolicyValues
from analytics.gate.policy import (
    FIELD_RULES,
    GatePolicyConflict,
    GatePolicyInvalid,
    gate_policy_current,
    gate_policy_document,
    gate_policy_update,
)
from analytics.models import GatePolicy
from deployments.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_the_first_read_creates_version_one_with_the_defaults(queue):
    policy = gate_policy_current(queue=queue)
    assert policy.version == 1
    assert policy.values() == GatePolicyValues()
    assert gate_policy_current(queue=queue).pk == policy.pk
    assert GatePolicy.objects.filter(queue=queue).count() == 1


def test_the_document_names_every_field_and_the_read_only_ones(queue):
    document = gate_policy_document(gate_policy_current(queue=queue))
    assert list(document) == [*FIELD_RULES, "version", "created_at", "created_by"]
    assert document["noninferiority_margin"] == 0.02
    assert document["window_days"] == 28
    assert (document["version"], document["created_by"]) == (1, None)


def test_an_edit_adds_a_version_and_an_audit_event_with_before_and_after(queue, admin_user):
    before = gate_policy_document(gate_policy_current(queue=queue))

    policy = gate_policy_update(
        queue=queue, values={"agreement_floor": 0.85, "kappa_floor": None}, actor=admin_user
    )

    assert policy.version == 2
    assert (policy.agreement_floor, policy.kappa_floor) == (0.85, None)
    assert policy.values().kappa_floor is None  # null switches the criterion off
    assert policy.min_judged_items == 500  # left out, so kept
    assert GatePolicy.objects.get(queue=queue, version=1).agreement_floor == 0.90
    event = AuditEvent.objects.get(action="gate_policy.update")
    assert event.queue == queue
    assert event.actor == admin_user
    assert event.before == before
    assert event.after == gate_policy_document(policy)
    assert (event.before["agreement_floor"], event.after["agreement_floor"]) == (0.9, 0.85)


def test_sending_the_document_back_unchanged_makes_no_version(queue, admin_user):
    document = gate_policy_document(gate_policy_current(queue=queue))
    policy = gate_policy_update(queue=queue, values=document, actor=admin_user)
    assert policy.version == 1
    assert not AuditEvent.objects.filter(action="gate_policy.update").exists()


def test_an_edit_made_to_an_older_version_is_refused(queue, admin_user):
    document = gate_policy_document(gate_policy_current(queue=queue))
    gate_policy_update(queue=queue, values={"window_days": 14}, actor=admin_user)
    with pytest.raises(GatePolicyConflict, match="now version 2"):
        gate_policy_update(queue=queue, values={**document, "window_days": 7}, actor=admin_user)
    assert gate_policy_current(queue=queue).window_days == 14


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("noninferiority_margin", 0.6, "not in"),
        ("noninferiority_margin", -0.01, "not in"),
        ("agreement_floor", 1.5, "not in"),
        ("kappa_floor", "0.8", "must be a number"),
        ("recall_floor", True, "must be a number"),
        ("min_judged_items", 10.5, "whole number"),
        ("min_judged_items", -1, "not in"),
        ("min_per_label", 2_000_000_000, "not in"),
        ("recall_min_items", None, "may not be null"),
        ("psi_major", 0, "not in"),
        ("latency_p95_budget_ms", float("inf"), "finite"),
        ("max_error_rate", float("nan"), "finite"),
        ("confidence", 0.5, "not in"),
        ("confidence", 1.0, "not in"),
        ("anytime_valid", 1, "true or false"),
        ("window_days", 0, "not in"),
        ("window_days", 367, "not in"),
        ("max_evaluation_age_hours", None, "may not be null"),
        ("canary_steps", [0.05, 0.5], "the last step must be 1"),
        ("canary_steps", [0.5, 0.25, 1], "each step must be larger"),
        ("canary_steps", "0.05, 1", "must be a list of 1 to"),
        ("canary_steps", None, "may not be null"),
        ("auto_advance", "yes", "true or false"),
        ("soak_minutes", -5, "not in"),
        ("soak_minutes", 10081, "not in"),
        ("threshold", 0.9, "not a policy field"),
    ],
)
def test_each_invalid_value_is_refused_naming_its_field(queue, admin_user, field, value, message):
    gate_policy_current(queue=queue)
    with pytest.raises(GatePolicyInvalid, match=message) as refused:
        gate_policy_update(queue=queue, values={field: value}, actor=admin_user)
    assert refused.value.field == field
    assert GatePolicy.objects.filter(queue=queue).count() == 1
    assert not AuditEvent.objects.exists()


def test_the_edges_of_each_range_are_accepted(queue, admin_user):
    policy = gate_policy_update(
        queue=queue,
        values={
            "noninferiority_margin": 0.5,
            "agreement_floor": 0,
            "kappa_floor": 1,
            "min_judged_items": 0,
            "confidence": 0.99,
            "window_days": 366,
            "anytime_valid": False,
        },
        actor=admin_user,
    )
    assert (policy.noninferiority_margin, policy.kappa_floor, policy.window_days) == (0.5, 1.0, 366)
    assert isinstance(policy.kappa_floor, float)
    assert policy.values().anytime_valid is False


def test_a_body_that_is_not_an_object_is_refused(queue, admin_user):
    with pytest.raises(GatePolicyInvalid, match="JSON object"):
        gate_policy_update(queue=queue, values=[1, 2], actor=admin_user)  # type: ignore[arg-type]


def test_the_canary_ladder_auto_advance_and_soak_time_are_edited_like_any_field(queue, admin_user):
    policy = gate_policy_update(
        queue=queue,
        values={"canary_steps": [0.1, 0.5, 1], "auto_advance": True, "soak_minutes": 30},
        actor=admin_user,
    )
    assert (policy.version, policy.canary_steps) == (2, [0.1, 0.5, 1.0])
    assert (policy.auto_advance, policy.soak_minutes) == (True, 30)
    # A later edit of another field keeps them.
    policy = gate_policy_update(queue=queue, values={"agreement_floor": 0.85}, actor=admin_user)
    assert (policy.version, policy.canary_steps, policy.auto_advance) == (3, [0.1, 0.5, 1.0], True)
