"""Evaluate a model version's promotion gate and keep an immutable snapshot of it.

The snapshot holds every figure the verdict rests on (policy version, window, each
criterion with its bounds, the fixed-sample figures beside the anytime-valid ones, the
sample still needed, the evidence in brief), as plain JSON without NaN or infinities, so
that a promotion can later show exactly what it relied on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from analytics.days import utc_today
from analytics.gate.evidence import gate_evidence_gather
from analytics.gate.inputs import GateEvidence, GatePolicyValues
from analytics.gate.policy import gate_policy_current, gate_policy_document
from analytics.gate.rules import CriterionResult, GateResult, gate_evaluate
from analytics.models import GateEvaluation, GatePolicy
from analytics.summaries.serialize import jsonable
from deployments.audit import audit_record
from deployments.mlflow_tags import mlflow_tags_enqueue
from deployments.models import ModelVersion

ANYTIME_VALID, FIXED_SAMPLE = "anytime_valid", "fixed_sample"
BOUNDED_CRITERIA = ("noninferiority", "agreement_floor", "kappa_floor", "per_label_recall")
SNAPSHOT_FORMAT = 1


def _criteria(results: tuple[CriterionResult, ...]) -> list[dict[str, Any]]:
    return [jsonable(result) for result in results]


Evaluate = Callable[..., GateResult]


def _anytime_valid_bounds(
    result: GateResult, evidence: GateEvidence, policy: GatePolicyValues, evaluate: Evaluate
) -> tuple[CriterionResult, ...]:
    """Return the bounded criteria with anytime-valid bounds, whichever bounds decided."""
    if policy.anytime_valid:
        return tuple(c for c in result.criteria if c.name in BOUNDED_CRITERIA)
    # The rules return the fixed-sample figures always and the anytime-valid ones only when
    # they decide; the snapshot shows both, so a fixed-sample policy asks for them again.
    other = evaluate(policy=replace(policy, anytime_valid=True), evidence=evidence)
    return tuple(c for c in other.criteria if c.name in BOUNDED_CRITERIA)


def _evidence_summary(evidence: GateEvidence) -> dict[str, Any]:
    """Return the evidence in brief: counts and the point figures the criteria read."""
    confusion = np.asarray(evidence.confusion, np.int64)
    return jsonable(
        {
            "labels": list(evidence.labels),
            "judged": int(confusion.sum()),
            "judged_per_label": confusion.sum(axis=1),
            "confusion": confusion,
            "double_inspected": int(np.asarray(evidence.paired_differences).size),
            "predictions": evidence.predictions,
            "errors": evidence.errors,
            "latency_p95_ms": evidence.latency_p95_ms,
            "max_psi": evidence.max_psi,
            "drifted_share": evidence.drifted_share,
            "int8_parity": evidence.int8_parity,
            "is_int8": evidence.is_int8,
        }
    )


def gate_evaluation_store(
    *,
    model_version: ModelVersion,
    policy: GatePolicy,
    evidence: GateEvidence,
    window: dict[str, Any],
    since: date,
    until: date,
    actor: User | None,
    sample: str = "all",
    evaluate: Evaluate = gate_evaluate,
    extra: dict[str, Any] | None = None,
) -> GateEvaluation:
    """Decide the evidence with the policy's rules (or evaluate's), store the snapshot, audit it.

    window is what the snapshot says the evidence covers; since and until are its UTC days.
    """
    values = policy.values()
    result = evaluate(policy=values, evidence=evidence)
    used = ANYTIME_VALID if values.anytime_valid else FIXED_SAMPLE
    snapshot = {
        "format": SNAPSHOT_FORMAT,
        "queue": model_version.queue.slug,
        "model": model_version.key,
        "verdict": result.verdict,
        "evaluated_at": timezone.now().isoformat(),
        "evaluated_by": actor.get_username() if actor is not None else None,
        "policy": gate_policy_document(policy),
        "window": window,
        "sample": sample,
        "criteria": _criteria(result.criteria),
        "bounds_used": used,
        "bounds": {
            ANYTIME_VALID: _criteria(_anytime_valid_bounds(result, evidence, values, evaluate)),
            FIXED_SAMPLE: _criteria(result.fixed_sample),
        },
        "needs": jsonable(result.needs),
        "evidence": _evidence_summary(evidence),
        **(extra or {}),
    }
    with transaction.atomic():
        evaluation = GateEvaluation.objects.create(
            queue=model_version.queue,
            model_version=model_version,
            policy=policy,
            verdict=result.verdict,
            since=since,
            until=until,
            snapshot=jsonable(snapshot),
            sample=sample,
            evaluated_by=actor,
        )
        audit_record(
            actor=actor,
            action="gate.evaluate",
            subject=evaluation,
            after={
                "verdict": result.verdict,
                "model": model_version.key,
                "policy_version": policy.version,
                "since": str(window.get("since")),
                "until": str(window.get("until")),
                "sample": sample,
            },
            queue=model_version.queue,
            evidence=f"gate-evaluation:{evaluation.pk}",
        )
        mlflow_tags_enqueue(model_version=model_version)
    return evaluation


def gate_evaluation_run(*, model_version: ModelVersion, actor: User | None) -> GateEvaluation:
    """Evaluate the gate of a model version on its queue's current policy; store the snapshot."""
    policy = gate_policy_current(queue=model_version.queue)
    until = utc_today()
    days = policy.window_days
    since = until - timedelta(days=days - 1)
    evidence = gate_evidence_gather(model_version=model_version, since=since, until=until)
    return gate_evaluation_store(
        model_version=model_version,
        policy=policy,
        evidence=evidence,
        window={"since": since.isoformat(), "until": until.isoformat(), "days": days},
        since=since,
        until=until,
        actor=actor,
    )


def gate_evaluation_document(evaluation: GateEvaluation) -> dict[str, Any]:
    """Return an evaluation as the API shows it: its id, then its snapshot."""
    return {"id": evaluation.pk, **evaluation.snapshot}


def gate_evaluation_latest(*, model_version: ModelVersion) -> GateEvaluation | None:
    """Return the model version's most recent gate evaluation, None if it was never evaluated."""
    return (
        GateEvaluation.objects.filter(model_version=model_version)
        .order_by("-created_at", "-id")
        .first()
    )


def gate_evaluation_get(*, evaluation_id: int) -> GateEvaluation | None:
    """Return one gate evaluation by id, None if there is none."""
    return (
        GateEvaluation.objects.select_related("queue", "model_version")
        .filter(pk=evaluation_id)
        .first()
    )
