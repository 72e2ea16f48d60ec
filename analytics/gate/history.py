"""Read a queue's gate policy versions with what each one changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from analytics.gate.policy import FIELD_RULES
from analytics.models import GatePolicy
from inspections.models import Queue

HISTORY_LIMIT = 50


@dataclass(frozen=True)
class PolicyVersion:
    """One version of a policy and the fields it changed from the version before."""

    policy: GatePolicy
    changes: tuple[str, ...]


@dataclass(frozen=True)
class PolicyHistory:
    """The newest versions of a queue's policy, and how many there are in all."""

    versions: tuple[PolicyVersion, ...]
    total: int


def policy_value_text(value: Any) -> str:
    """Return a policy value as people read it: empty means the criterion is off."""
    if value is None:
        return "off"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        # Commas, not arrows: a change is written "before → after".
        return ", ".join(f"{step:g}" for step in value)
    return str(value)


def _changes(policy: GatePolicy, previous: GatePolicy | None) -> tuple[str, ...]:
    if previous is None:
        return ("first version",)
    return tuple(
        f"{name}: {policy_value_text(getattr(previous, name))} → "
        f"{policy_value_text(getattr(policy, name))}"
        for name in FIELD_RULES
        if getattr(previous, name) != getattr(policy, name)
    )


def gate_policy_history(*, queue: Queue, limit: int = HISTORY_LIMIT) -> PolicyHistory:
    """Return the queue's newest policy versions, newest first, each with what it changed."""
    rows = list(
        GatePolicy.objects.select_related("created_by")
        .filter(queue=queue)
        .order_by("-version")[: limit + 1]
    )
    # One row more than shown, so the oldest shown version still has its predecessor.
    versions = tuple(
        PolicyVersion(policy=row, changes=_changes(row, rows[k + 1] if k + 1 < len(rows) else None))
        for k, row in enumerate(rows[:limit])
    )
    total = len(rows) if len(rows) <= limit else GatePolicy.objects.filter(queue=queue).count()
    return PolicyHistory(versions=versions, total=total)
