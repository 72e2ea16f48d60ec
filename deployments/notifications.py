"""Mail to admins: a promotion request waiting for them, a deployed model stuck in error.

(The automatic rollback mails its own, from deployments.monitor.) Mail goes through Django's
email settings (EMAIL_URL). A mail failure is logged, never raised into the change that
caused it.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mass_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from deployments.models import Decision, Deployment, ErrorEpisode, Prediction, PromotionRequest
from shadowlab import roles

logger = logging.getLogger(__name__)

REASONS_SHOWN = 3
REASON_SAMPLE = 200


def _admin_emails(*, excluding: User | None = None) -> list[str]:
    admins = User.objects.filter(is_active=True, groups__name=roles.ADMIN).exclude(email="")
    if excluding is not None:
        admins = admins.exclude(pk=excluding.pk)
    return sorted(set(admins.values_list("email", flat=True)))


def _mail_admins(subject: str, body: str, recipients: list[str]) -> int:
    if not recipients:
        return 0
    try:
        return send_mass_mail(
            [(subject, body, None, [address]) for address in recipients], fail_silently=False
        )
    except Exception:
        logger.exception("could not email the admins: %s", subject)
        return 0


def promotion_request_notify_enqueue(*, request: PromotionRequest) -> None:
    """After commit, queue the mail that tells the admins a request waits for them."""
    transaction.on_commit(partial(_promotion_request_notify_send, request.pk))


def _promotion_request_notify_send(request_id: int) -> None:
    from deployments.tasks import promotion_request_notify

    try:
        promotion_request_notify.delay(request_id)
    except Exception:
        # Broker down: the request still shows on the rollout page as pending.
        logger.warning("mail about promotion request %d not queued", request_id)


def promotion_request_notify(*, request_id: int) -> int:
    """Mail every admin but the requester that a promotion request waits for a decision.

    Return the number of mails sent; none for a request already decided.
    """
    request = PromotionRequest.objects.select_related(
        "queue", "model_version", "requested_by", "evaluation"
    ).get(pk=request_id)
    if request.status != PromotionRequest.Status.PENDING:
        return 0
    target = (
        f"canary at {request.share:.0%}"
        if request.target == PromotionRequest.Target.CANARY
        else "live"
    )
    page = reverse("rollout:promotion", kwargs={"request_id": request.pk})
    subject = (
        f"[ShadowLab] {request.model_version.key} on {request.queue.name}: promotion to "
        f"{target} waits for approval"
    )
    body = "\n".join(
        [
            f"{request.requested_by.get_username()} asks to promote {request.model_version.key} "
            f"on {request.queue.name} to {target}.",
            "",
            f"Gate evaluation {request.evaluation.pk}: {request.evaluation.verdict}.",
            f"Note: {request.note}" if request.note else "No note.",
            "",
            "An admin other than the requester approves or rejects it:",
            f"{settings.SHADOWLAB_BASE_URL}{page}",
        ]
    )
    # Four eyes: the requester cannot decide, so is not asked to.
    return _mail_admins(subject, body, _admin_emails(excluding=request.requested_by))


def _window_counts(deployment: Deployment, since: datetime) -> tuple[int, int]:
    """Return (errors, total) of the version's predictions and intake decisions since then."""
    predictions = Prediction.objects.filter(
        model_version_id=deployment.model_version_id, created_at__gte=since
    ).aggregate(total=Count("id"), errors=Count("id", filter=Q(status=Prediction.Status.ERROR)))
    decisions = Decision.objects.filter(
        model_version_id=deployment.model_version_id, created_at__gte=since
    ).aggregate(total=Count("id"), errors=Count("id", filter=Q(outcome=Decision.Outcome.FAILED)))
    return (
        predictions["errors"] + decisions["errors"],
        predictions["total"] + decisions["total"],
    )


def _reasons(deployment: Deployment, since: datetime) -> list[str]:
    """Return the most frequent error reasons among the latest errors of the window."""
    latest = list(
        Prediction.objects.filter(
            model_version_id=deployment.model_version_id,
            created_at__gte=since,
            status=Prediction.Status.ERROR,
        )
        .order_by("-created_at")
        .values_list("reason", flat=True)[:REASON_SAMPLE]
    ) + list(
        Decision.objects.filter(
            model_version_id=deployment.model_version_id,
            created_at__gte=since,
            outcome=Decision.Outcome.FAILED,
        )
        .order_by("-created_at")
        .values_list("reason", flat=True)[:REASON_SAMPLE]
    )
    return [
        f"{count} x {reason[:200]}" for reason, count in Counter(latest).most_common(REASONS_SHOWN)
    ]


def _episode_body(episode: ErrorEpisode, minutes: int) -> str:
    version = episode.model_version
    page = reverse("models:version", kwargs={"key": version.key})
    lines = [
        f"{episode.errors} of the last {episode.total} predictions of {version.key} "
        f"({episode.role} on {episode.queue.name}) in {minutes} minutes were errors.",
        "",
        "Most frequent reasons:",
        *[f"- {reason}" for reason in episode.reasons],
        "",
        "This is one mail for the whole episode: the next comes only after the error rate has "
        "fallen back and risen again.",
        f"Model version page: {settings.SHADOWLAB_BASE_URL}{page}",
    ]
    return "\n".join(lines)


def model_errors_watch(*, now: datetime | None = None) -> list[ErrorEpisode]:
    """Open an episode (and mail the admins once) for each deployed version stuck in error.

    A version is stuck when at least ERROR_ALERT_RATE of its predictions (shadow scoring and
    intake decisions) in the last ERROR_WINDOW_MINUTES were errors, counting at least
    ERROR_ALERT_MIN_ITEMS. Its open episode closes when a full-enough window falls below the
    rate. Return the episodes opened by this run.
    """
    now = now or timezone.now()
    minutes = int(settings.SHADOWLAB["ERROR_WINDOW_MINUTES"])
    rate = float(settings.SHADOWLAB["ERROR_ALERT_RATE"])
    minimum = max(1, int(settings.SHADOWLAB["ERROR_ALERT_MIN_ITEMS"]))
    since = now - timedelta(minutes=minutes)
    deployments = Deployment.objects.filter(
        role__in=[Deployment.Role.SHADOW, Deployment.Role.CANARY, Deployment.Role.LIVE]
    ).select_related("queue", "model_version")
    opened = []
    for deployment in deployments:
        errors, total = _window_counts(deployment, since)
        open_episode = ErrorEpisode.objects.filter(
            model_version_id=deployment.model_version_id, ended_at__isnull=True
        ).first()
        if total < minimum:
            continue  # too few to say it is stuck, or that it recovered
        stuck = errors / total >= rate
        if open_episode is not None and not stuck:
            open_episode.ended_at = now
            open_episode.save(update_fields=["ended_at"])
        elif open_episode is None and stuck:
            episode = _episode_open(deployment, now, errors, total, since, minutes)
            if episode is not None:
                opened.append(episode)
    return opened


def _episode_open(
    deployment: Deployment, now: datetime, errors: int, total: int, since: datetime, minutes: int
) -> ErrorEpisode | None:
    try:
        with transaction.atomic():
            episode = ErrorEpisode.objects.create(
                queue=deployment.queue,
                model_version=deployment.model_version,
                role=deployment.role,
                started_at=now,
                errors=errors,
                total=total,
                reasons=_reasons(deployment, since),
            )
    except IntegrityError:
        return None  # an overlapping run opened it first, and mailed
    subject = (
        f"[ShadowLab] {deployment.model_version.key} is stuck in error on "
        f"{deployment.queue.name} ({errors / total:.0%} of {total} predictions)"
    )
    _mail_admins(subject, _episode_body(episode, minutes), _admin_emails())
    return episode
