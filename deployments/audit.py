"""Append to the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import models

from deployments.models import AuditEvent
from inspections.models import Queue


def audit_record(
    *,
    actor: User | None,
    action: str,
    subject: models.Model,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    queue: Queue | None = None,
    evidence: str = "",
) -> AuditEvent:
    """Record that actor did action to subject (call inside the transaction that did it).

    The queue defaults to the subject's own; evidence names what the change relied on.
    """
    queue_id = queue.pk if queue is not None else getattr(subject, "queue_id", None)
    if queue_id is None and isinstance(subject, Queue):
        queue_id = subject.pk
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_name=actor.get_username() if actor is not None and actor.pk else "system",
        action=action,
        subject_type=subject._meta.label,
        subject_id=str(subject.pk),
        subject=str(subject)[:300],
        before=before,
        after=after,
        queue_id=queue_id,
        evidence=evidence[:100],
    )
