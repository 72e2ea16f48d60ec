"""Reads of model versions, their deployments, promotion requests and a queue's rollout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max, QuerySet

from deployments import transitions
from deployments.models import (
    AuditEvent,
    Deployment,
    ModelVersion,
    PromotionRequest,
    RolloutControl,
)
from inspections.models import Queue

# The roles whose versions score every new item in the background: all but retired.
SCORING_ROLES = (
    Deployment.Role.SHADOW,
    Deployment.Role.CANARY,
    Deployment.Role.LIVE,
    Deployment.Role.STANDBY,
)


def deployments_scoring() -> list[tuple[Deployment, datetime]]:
    """Return each deployment that scores new items, with when it began to score them.

    A version scores from its latest shadow start on, through canary, live and standby,
    until it retires; its `started_at` moves with each role, so the start is read from the
    audit log of its moves (`started_at` for rows made without one).
    """
    deployments = list(
        Deployment.objects.filter(role__in=SCORING_ROLES).select_related("queue", "model_version")
    )
    starts = dict(
        AuditEvent.objects.filter(
            action=f"deployment.{transitions.SHADOW_START}",
            subject_type=Deployment._meta.label,
            subject_id__in=[str(deployment.pk) for deployment in deployments],
        )
        .values("subject_id")
        .annotate(latest=Max("created_at"))
        .values_list("subject_id", "latest")
    )
    return [
        (
            deployment,
            min(starts.get(str(deployment.pk), deployment.started_at), deployment.started_at),
        )
        for deployment in deployments
    ]


def model_key_parse(key: str) -> tuple[str, str]:
    """Return the name and version of a "name:version" key; raise ValueError if it is not one."""
    name, separator, version = (part.strip() for part in key.partition(":"))
    if not separator or not name or not version:
        raise ValueError(f"'{key}' is not a model key of the form name:version")
    return name, version


def queue_model_version_find(*, queue: Queue, key: str) -> ModelVersion | None:
    """Return the queue's model version called "name:version", None if none or not a key."""
    try:
        name, version = model_key_parse(key)
    except ValueError:
        return None
    return (
        ModelVersion.objects.select_related("queue", "parent")
        .filter(queue=queue, name=name, version=version)
        .first()
    )


def model_version_get_by_key(key: str) -> ModelVersion:
    """Return the model version called "name:version", or raise ModelVersion.DoesNotExist.

    Names may not contain ':' (the registry refuses them), so the first ':' splits the key
    and a version may contain more.
    """
    try:
        name, version = model_key_parse(key)
    except ValueError as exc:
        raise ModelVersion.DoesNotExist(str(exc)) from None
    try:
        return ModelVersion.objects.select_related("queue", "parent").get(
            name=name, version=version
        )
    except ModelVersion.DoesNotExist:
        raise ModelVersion.DoesNotExist(f"no model version {name}:{version}") from None


PROMOTIONS_PAGE_SIZE_MAX = 100
PENDING_SHOWN_MAX = 100


def promotion_request_json(request: PromotionRequest) -> dict[str, Any]:
    """Return a promotion request as the API and pages show it."""
    return {
        "id": request.pk,
        "queue": request.queue.slug,
        "model": request.model_version.key,
        "target": request.target,
        "share": request.share,
        "status": request.status,
        "evaluation": request.evaluation_id,
        "note": request.note,
        "requested_by": request.requested_by.get_username(),
        "requested_at": request.requested_at.isoformat(),
        "decided_by": request.decided_by.get_username() if request.decided_by else None,
        "decided_at": request.decided_at.isoformat() if request.decided_at else None,
        "comment": request.comment,
    }


def _promotion_requests() -> QuerySet[PromotionRequest]:
    return PromotionRequest.objects.select_related(
        "queue", "model_version", "requested_by", "decided_by"
    )


def promotion_request_find(request_id: int) -> PromotionRequest | None:
    """Return the promotion request with this id, None if there is none."""
    return _promotion_requests().filter(pk=request_id).first()


@dataclass(frozen=True)
class PromotionPage:
    requests: list[PromotionRequest]
    total: int
    page: int
    page_size: int


def promotion_requests_page(
    *, queue: Queue, status: str | None, page: int, page_size: int
) -> PromotionPage:
    """Return one page of the queue's promotion requests, newest first.

    Raise ValueError on an unknown status or a page or page size out of range.
    """
    if status is not None and status not in PromotionRequest.Status.values:
        expected = ", ".join(PromotionRequest.Status.values)
        raise ValueError(f"status must be one of {expected}, got {status!r}")
    if not 1 <= page_size <= PROMOTIONS_PAGE_SIZE_MAX:
        raise ValueError(f"page_size must be between 1 and {PROMOTIONS_PAGE_SIZE_MAX}")
    if not 1 <= page <= 10_000:
        raise ValueError("page must be between 1 and 10000")
    rows = _promotion_requests().filter(queue=queue)
    if status is not None:
        rows = rows.filter(status=status)
    start = (page - 1) * page_size
    return PromotionPage(
        requests=list(rows[start : start + page_size]),
        total=rows.count(),
        page=page,
        page_size=page_size,
    )


def _deployment_json(deployment: Deployment) -> dict[str, Any]:
    promotion = deployment.promotion
    return {
        "model": deployment.model_version.key,
        "role": deployment.role,
        "share": deployment.traffic_share,
        "since": deployment.started_at.isoformat(),
        "promotion": promotion.pk if promotion else None,
        "evaluation": promotion.evaluation_id if promotion else None,
        "moves": list(transitions.moves_allowed(deployment.role)),
    }


def rollout_state(*, queue: Queue) -> dict[str, Any]:
    """Return the queue's rollout: live, canary and share, shadows, standby, kill switch, pending.

    Each version lists the moves legal from its role, so pages can offer those buttons.
    """
    deployments = (
        Deployment.objects.filter(queue=queue)
        .exclude(role=Deployment.Role.RETIRED)
        .select_related("model_version", "promotion")
        .order_by("started_at", "id")
    )
    by_role: dict[str, list[dict[str, Any]]] = {}
    for deployment in deployments:
        by_role.setdefault(deployment.role, []).append(_deployment_json(deployment))
    control = RolloutControl.objects.filter(queue=queue).select_related("changed_by").first()
    changed_by = control.changed_by if control else None
    changed_at = control.changed_at if control else None
    pending = _promotion_requests().filter(queue=queue, status=PromotionRequest.Status.PENDING)
    return {
        "queue": queue.slug,
        "live": next(iter(by_role.get(Deployment.Role.LIVE, [])), None),
        "canary": next(iter(by_role.get(Deployment.Role.CANARY, [])), None),
        "shadows": by_role.get(Deployment.Role.SHADOW, []),
        "standby": next(iter(by_role.get(Deployment.Role.STANDBY, [])), None),
        "kill_switch": {
            "on": bool(control and control.kill_switch),
            "changed_by": changed_by.get_username() if changed_by else None,
            "changed_at": changed_at.isoformat() if changed_at else None,
        },
        "pending": [promotion_request_json(request) for request in pending[:PENDING_SHOWN_MAX]],
    }
