"""Set a queue's deferral threshold: validated, audited, and seen by every web process."""

from __future__ import annotations

import math

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction

from deployments.audit import audit_record
from deployments.rollout import queue_lock, routing_version_bump
from inspections.models import Queue
from shadowlab import roles

ACTION = "deferral_threshold.set"


def deferral_threshold_clean(value: object) -> float:
    """Return value as a threshold in [0, 1]; raise ValueError with the reason otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"the deferral threshold must be a number from 0 to 1, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        shown = str(value)[:40]
        raise ValueError(
            f"the deferral threshold must be a number from 0 to 1, got {shown!r}"
        ) from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise ValueError(
            f"the deferral threshold must lie from 0 (defer nothing) to 1, got {number:g}"
        )
    return number


def queue_deferral_threshold_set(
    *, queue: Queue, threshold: object, actor: User, evidence: str = ""
) -> Queue:
    """Set the confidence under which a model decision goes to inspectors instead.

    Raise PermissionDenied unless the actor is an admin, ValueError unless the threshold
    is a number in [0, 1]; nothing changes then. The change is recorded in the audit log
    (before and after; evidence names the report it was chosen on) and moves the queue's
    routing version, so web processes route with the new threshold without a restart.
    Setting the threshold in force changes and records nothing.
    """
    if not roles.can_set_deferral_threshold(actor):
        raise PermissionDenied("setting the deferral threshold needs the admin role")
    value = deferral_threshold_clean(threshold)
    with transaction.atomic():
        locked = queue_lock(queue)
        before = locked.deferral_threshold
        if before == value:
            return locked
        locked.deferral_threshold = value
        locked.save(update_fields=["deferral_threshold"])
        routing_version_bump(locked)
        audit_record(
            actor=actor,
            action=ACTION,
            subject=locked,
            before={"deferral_threshold": before},
            after={"deferral_threshold": value},
            queue=locked,
            evidence=evidence,
        )
    queue.deferral_threshold = value
    return locked
