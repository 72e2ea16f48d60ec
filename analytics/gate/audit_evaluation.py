"""Evaluate a canary's gate on its own audit sample since it took its step; keep the snapshot."""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth.models import User
from django.utils import timezone

from analytics.gate.audit_evidence import AUDIT_ITEMS_MAX, audit_evidence_gather
from analytics.gate.audit_rules import audit_gate_evaluate
from analytics.gate.evaluation import gate_evaluation_store
from analytics.gate.policy import gate_policy_current
from analytics.models import GateEvaluation
from deployments.models import ModelVersion

AUDIT = "audit"


def gate_evaluation_audit_run(
    *,
    model_version: ModelVersion,
    since: datetime,
    actor: User | None = None,
    now: datetime | None = None,
) -> GateEvaluation:
    """Evaluate the version's gate on its audit sample received in [since, now); store it.

    Stored with sample "audit"; non-inferiority and INT8 parity read as not measured on
    the audit sample when it cannot decide them (analytics.gate.audit_rules).
    """
    until = now or timezone.now()
    policy = gate_policy_current(queue=model_version.queue)
    sample = audit_evidence_gather(model_version=model_version, since=since, until=until)
    return gate_evaluation_store(
        model_version=model_version,
        policy=policy,
        evidence=sample.evidence,
        window={
            "since": since.astimezone(UTC).isoformat(),
            "until": until.astimezone(UTC).isoformat(),
            "days": None,
        },
        since=since.astimezone(UTC).date(),
        until=until.astimezone(UTC).date(),
        actor=actor,
        sample=AUDIT,
        evaluate=audit_gate_evaluate,
        extra={
            "audit": {
                "audit_items": sample.audit_items,
                "judged_items": sample.judged_items,
                "decisions": sample.decisions,
                "capped_at": AUDIT_ITEMS_MAX if sample.capped else None,
            }
        },
    )


def gate_evaluation_audit_latest(
    *, model_version: ModelVersion, since: datetime
) -> GateEvaluation | None:
    """Return the version's latest audit-sample evaluation made since this time, None if none."""
    return (
        GateEvaluation.objects.select_related("policy")
        .filter(model_version=model_version, sample=AUDIT, created_at__gte=since)
        .order_by("-created_at", "-id")
        .first()
    )
