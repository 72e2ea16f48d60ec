"""A queue's gate policy: read the current version, edit it into a new one, as a document.

Every edit adds a version (rows are never changed, evaluations keep the version they
used) and an audit event with the documents before and after, in one transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from analytics.models import GatePolicy
from deployments.audit import audit_record
from deployments.canary_steps import steps_clean
from inspections.models import Queue

# The database's integer columns stop at 2**31 - 1; item counts far below that.
MAX_COUNT = 1_000_000_000


@dataclass(frozen=True)
class FieldRule:
    """What one editable policy field accepts."""

    kind: type  # int, float, bool, or list (the canary steps)
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the low end itself is refused
    high_open: bool = False
    nullable: bool = True  # null switches the criterion off

    def range_text(self) -> str:
        """Return the accepted range as words."""
        low = "(" if self.low_open else "["
        high = ")" if self.high_open else "]"
        return f"in {low}{self.low:g}, {self.high:g}{high}"


def _share(nullable: bool = True) -> FieldRule:
    return FieldRule(float, 0.0, 1.0, nullable=nullable)


def _count(low: int = 0, high: int = MAX_COUNT, nullable: bool = True) -> FieldRule:
    return FieldRule(int, low, high, nullable=nullable)


# In the order the document lists them.
FIELD_RULES: dict[str, FieldRule] = {
    "min_judged_items": _count(),
    "min_per_label": _count(),
    "noninferiority_margin": FieldRule(float, 0.0, 0.5),
    "agreement_floor": _share(),
    "kappa_floor": _share(),
    "recall_floor": _share(),
    "recall_min_items": _count(nullable=False),
    "psi_major": FieldRule(float, 0.0, 10.0, low_open=True),
    "drifted_share_max": _share(),
    "max_error_rate": _share(),
    "latency_p95_budget_ms": FieldRule(float, 0.0, 3_600_000.0, low_open=True),
    "int8_parity_floor": _share(),
    "confidence": FieldRule(float, 0.5, 1.0, low_open=True, high_open=True, nullable=False),
    "anytime_valid": FieldRule(bool, nullable=False),
    "window_days": _count(1, 366, nullable=False),
    "max_evaluation_age_hours": _count(1, 720, nullable=False),
    # The canary ladder and auto-advance (deployments.canary_steps, deployments.canary_advance).
    "canary_steps": FieldRule(list, nullable=False),
    "auto_advance": FieldRule(bool, nullable=False),
    "soak_minutes": _count(0, 7 * 24 * 60, nullable=False),
}
READ_ONLY_FIELDS = ("version", "created_at", "created_by")


class GatePolicyInvalid(ValueError):
    """A policy edit names a field it may not, or a value outside the field's type or range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class GatePolicyConflict(ValueError):
    """The edit was made to a version that is no longer the current one."""


def _checked(name: str, value: Any) -> Any:
    """Return the value if the field accepts it; raise GatePolicyInvalid naming the field."""
    rule = FIELD_RULES[name]
    if value is None:
        if rule.nullable:
            return None
        raise GatePolicyInvalid(name, "may not be null: this setting cannot be switched off")
    if rule.kind is bool:
        if not isinstance(value, bool):
            raise GatePolicyInvalid(name, "must be true or false")
        return value
    if rule.kind is list:
        try:
            return list(steps_clean(value))
        except ValueError as exc:
            raise GatePolicyInvalid(name, str(exc)) from None
    # JSON's true and false are not numbers here, whatever Python says.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GatePolicyInvalid(name, f"must be a number {rule.range_text()} or null")
    if rule.kind is int and not isinstance(value, int):
        raise GatePolicyInvalid(name, f"must be a whole number {rule.range_text()}")
    if not math.isfinite(value):
        raise GatePolicyInvalid(name, "must be a finite number")
    assert rule.low is not None and rule.high is not None
    too_low = value <= rule.low if rule.low_open else value < rule.low
    too_high = value >= rule.high if rule.high_open else value > rule.high
    if too_low or too_high:
        raise GatePolicyInvalid(name, f"{value:g} is not {rule.range_text()}")
    return rule.kind(value)


def gate_policy_values_check(values: dict[str, Any]) -> dict[str, Any]:
    """Return the editable fields of a (partial) document, checked; refuse unknown fields."""
    if not isinstance(values, dict):
        raise GatePolicyInvalid("body", "must be a JSON object of policy fields")
    checked = {}
    for name, value in values.items():
        if name in READ_ONLY_FIELDS:
            continue
        if name not in FIELD_RULES:
            raise GatePolicyInvalid(
                str(name)[:60], f"is not a policy field; expected one of {', '.join(FIELD_RULES)}"
            )
        checked[name] = _checked(name, value)
    return checked


def gate_policy_document(policy: GatePolicy) -> dict[str, Any]:
    """Return the policy as the document GET returns and PUT accepts back."""
    document: dict[str, Any] = {name: getattr(policy, name) for name in FIELD_RULES}
    document["version"] = policy.version
    document["created_at"] = policy.created_at.isoformat()
    document["created_by"] = policy.created_by.get_username() if policy.created_by else None
    return document


def _latest(queue: Queue) -> GatePolicy | None:
    return (
        GatePolicy.objects.select_related("created_by")
        .filter(queue=queue)
        .order_by("-version")
        .first()
    )


def gate_policy_current(*, queue: Queue) -> GatePolicy:
    """Return the queue's current policy, creating version 1 with the defaults if it has none."""
    policy = _latest(queue)
    if policy is not None:
        return policy
    try:
        with transaction.atomic():
            return GatePolicy.objects.create(queue=queue, version=1)
    except IntegrityError:
        # Another request created version 1 first: that one is the current policy.
        policy = _latest(queue)
        if policy is None:
            raise
        return policy


def gate_policy_update(*, queue: Queue, values: dict[str, Any], actor: User) -> GatePolicy:
    """Store an edit of the queue's policy as a new version; return the current version.

    Fields left out keep their value; the read-only fields are ignored, except a
    ``version`` other than the current one, which is refused (someone edited since). An
    edit that changes nothing makes no version and no audit event.
    """
    checked = gate_policy_values_check(values)
    gate_policy_current(queue=queue)
    with transaction.atomic():
        # Two admins editing at once: the queue row serialises them, so each edit builds on
        # the version before it and neither trips the unique version constraint.
        Queue.objects.select_for_update().filter(pk=queue.pk).first()
        current = _latest(queue)
        assert current is not None
        if "version" in values and values["version"] != current.version:
            raise GatePolicyConflict(
                f"the policy was edited since version {values['version']!r}; it is now version"
                f" {current.version}: read it again and make the edit on that"
            )
        merged = {name: getattr(current, name) for name in FIELD_RULES} | checked
        if all(merged[name] == getattr(current, name) for name in FIELD_RULES):
            return current
        policy = GatePolicy.objects.create(
            queue=queue, version=current.version + 1, created_by=actor, **merged
        )
        audit_record(
            actor=actor,
            action="gate_policy.update",
            subject=policy,
            before=gate_policy_document(current),
            after=gate_policy_document(policy),
            queue=queue,
        )
    return policy
