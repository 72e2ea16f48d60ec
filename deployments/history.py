"""Read a model version's whole history: roles, audit events, gate evaluations, promotions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db.models import CharField, Q, QuerySet, Value
from django.db.models.functions import Cast, Concat

from analytics.models import GateEvaluation
from deployments.models import (
    AuditEvent,
    Deployment,
    ErrorEpisode,
    ModelVersion,
    PromotionRequest,
)

HISTORY_LIMIT = 50
# Evaluations have a list of their own; their audit events would crowd out the rest.
EVENTS_LISTED_ELSEWHERE = ("gate.evaluate",)


@dataclass(frozen=True)
class Bounded:
    """The newest rows of a list, and how many there are in all."""

    rows: tuple[Any, ...]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


@dataclass(frozen=True)
class EventRow:
    """An audit event with its change written out."""

    event: AuditEvent
    change: str


@dataclass(frozen=True)
class ModelVersionHistory:
    """Everything that happened to one model version, newest first, each list bounded."""

    model_version: ModelVersion
    variants: tuple[ModelVersion, ...]
    deployments: tuple[Deployment, ...]
    events: Bounded
    evaluations: Bounded
    promotions: Bounded
    error_episodes: Bounded


def _bounded(queryset: QuerySet[Any], limit: int) -> Bounded:
    rows = tuple(queryset[: limit + 1])
    total = len(rows) if len(rows) <= limit else queryset.count()
    return Bounded(rows=rows[:limit], total=total)


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)[:120]


def audit_change_text(before: Any, after: Any) -> str:
    """Return what an audit event changed, field by field; a sentence when nothing is listed."""
    if not isinstance(before, dict):
        before = {}
    if not isinstance(after, dict):
        after = {}
    changes = []
    for name in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name not in before:
            changes.append(f"{name}: {_text(new)}")
        else:
            changes.append(f"{name}: {_text(old)} → {_text(new)}")
    return "; ".join(changes[:12]) or "no fields recorded"


def _as_text(queryset: QuerySet[Any], prefix: str = "") -> QuerySet[Any]:
    """Return the rows' ids as the text an audit event stores, as a subquery."""
    text = Cast("pk", CharField())
    return queryset.annotate(ref=Concat(Value(prefix), text) if prefix else text).values("ref")


def _events(version: ModelVersion) -> QuerySet[AuditEvent]:
    deployments = Deployment.objects.filter(model_version=version)
    evaluations = GateEvaluation.objects.filter(model_version=version)
    promotions = PromotionRequest.objects.filter(model_version=version)
    about_version = (
        Q(subject_type=ModelVersion._meta.label, subject_id=str(version.pk))
        | Q(subject_type=Deployment._meta.label, subject_id__in=_as_text(deployments))
        | Q(subject_type=PromotionRequest._meta.label, subject_id__in=_as_text(promotions))
        | Q(evidence__in=_as_text(evaluations, "gate-evaluation:"))
    )
    return (
        AuditEvent.objects.filter(about_version)
        .exclude(action__in=EVENTS_LISTED_ELSEWHERE)
        .order_by("-created_at", "-id")
    )


def model_version_history(
    *, model_version: ModelVersion, limit: int = HISTORY_LIMIT
) -> ModelVersionHistory:
    """Return the model version's roles and its newest events, evaluations and promotions."""
    events = _bounded(_events(model_version), limit)
    evaluations = _bounded(
        GateEvaluation.objects.select_related("policy", "evaluated_by", "queue")
        .filter(model_version=model_version)
        .order_by("-created_at", "-id"),
        limit,
    )
    promotions = _bounded(
        PromotionRequest.objects.select_related("requested_by", "decided_by", "evaluation")
        .filter(model_version=model_version)
        .order_by("-requested_at", "-id"),
        limit,
    )
    return ModelVersionHistory(
        model_version=model_version,
        variants=tuple(ModelVersion.objects.filter(parent=model_version).order_by("created_at")),
        deployments=tuple(
            Deployment.objects.select_related("queue", "promotion")
            .filter(model_version=model_version)
            .order_by("queue__name")
        ),
        events=Bounded(
            rows=tuple(EventRow(e, audit_change_text(e.before, e.after)) for e in events.rows),
            total=events.total,
        ),
        evaluations=evaluations,
        promotions=promotions,
        # The stretches in which its predictions were mostly errors (admins were mailed once
        # for each, with a link to this page).
        error_episodes=_bounded(
            ErrorEpisode.objects.select_related("queue")
            .filter(model_version=model_version)
            .order_by("-started_at", "-id"),
            limit,
        ),
    )
