"""The automatic rollback: look at every canary and live version's window, roll back on a breach.

Each look is stored as a ``MonitorCheck`` with every figure. A breach rolls the version
back through ``rollout_rollback`` (canary to shadow; live to shadow with its standby live
again, or inspectors deciding everything when there is none), with the check as its
evidence, an audit event holding the figures, and an email to every admin.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mass_mail
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

from analytics.gate.policy import gate_policy_current
from analytics.models import GatePolicy
from deployments.audit import audit_record
from deployments.models import Deployment, MonitorCheck
from deployments.monitor_rules import (
    BREACH,
    CHECK_TITLES,
    MonitorResult,
    MonitorThresholds,
    monitor_evaluate,
)
from deployments.monitor_window import monitor_window_read
from deployments.rollout import REASON_MAX_CHARS, rollout_rollback
from deployments.transitions import TransitionRefused
from shadowlab import roles

logger = logging.getLogger("shadowlab.monitor")

# Looks kept per version besides those that rolled it back: the page shows the latest,
# the few before it show whether a version hovers at a threshold.
KEEP_PER_VERSION = 10
ERROR_TEXT_MAX = 300
# The name of the entry of a look's checks that holds the counts it read.
READ_FACTS = "read"


def monitor_thresholds(policy: GatePolicy) -> MonitorThresholds:
    """Return the rollback thresholds of a policy version."""
    return MonitorThresholds(
        agreement_floor=policy.agreement_floor,
        min_audited=policy.rollback_min_audited,
        min_decisions=policy.rollback_min_decisions,
        max_error_rate=policy.rollback_max_error_rate,
        latency_p95_ms=policy.rollback_latency_p95_ms,
        drifted_share_max=policy.rollback_drifted_share_max,
        confidence=policy.confidence,
    )


def monitor_window_bounds(
    *, deployment: Deployment, policy: GatePolicy, now: datetime
) -> tuple[datetime, datetime]:
    """Return the window a look reads: the policy's minutes ending now, never before the role."""
    start = max(now - timedelta(minutes=policy.rollback_window_minutes), deployment.started_at)
    return min(start, now), now


def _summary(result: MonitorResult, key: str, role: str) -> str:
    if result.verdict == BREACH:
        return f"Automatic rollback of {key} ({role}): {result.reason()}"
    if result.verdict == MonitorCheck.Verdict.OK:
        return f"{key} ({role}) is within every rollback threshold on its window."
    return (
        f"Nothing breached on {key}'s window ({role}); some checks wait for their minimum sample."
    )


def _reason(summary: str) -> str:
    if len(summary) <= REASON_MAX_CHARS:
        return summary
    return summary[: REASON_MAX_CHARS - 1].rstrip() + "…"


def _prune(check: MonitorCheck) -> None:
    """Delete the version's looks beyond the latest few, keeping every one that rolled it back."""
    stale = list(
        MonitorCheck.objects.filter(model_version_id=check.model_version_id, rolled_back=False)
        .order_by("-created_at", "-id")
        .values_list("id", flat=True)[KEEP_PER_VERSION : KEEP_PER_VERSION + 1000]
    )
    if stale:
        MonitorCheck.objects.filter(id__in=stale).delete()


def _admin_emails() -> list[str]:
    return sorted(
        set(
            User.objects.filter(is_active=True, groups__name=roles.ADMIN)
            .exclude(email="")
            .values_list("email", flat=True)
        )
    )


def _who_decides_now(deployment: Deployment) -> str:
    live = (
        Deployment.objects.filter(queue=deployment.queue, role=Deployment.Role.LIVE)
        .select_related("model_version")
        .first()
    )
    back = f"{deployment.model_version.key} is back in shadow"
    if deployment.role == Deployment.Role.CANARY:
        if live is not None:
            return f"{back}; the live version {live.model_version.key} decides its share again."
        return f"{back}; inspectors decide its share again."
    if live is not None:
        return f"{back}; the standby {live.model_version.key} is live again."
    return f"{back}; there was no standby, so inspectors decide every item now."


def _rollback(deployment: Deployment, check: MonitorCheck, result: MonitorResult) -> None:
    """Roll the version back on the stored check, unless it has moved already."""
    evidence = f"monitor-check:{check.pk}"
    try:
        rollout_rollback(
            queue=deployment.queue,
            model_version=deployment.model_version,
            actor=None,
            reason=check.sentence,
            evidence=evidence,
        )
    except TransitionRefused as exc:
        # Another look, or a person, moved it first: nothing more to do.
        check.outcome = f"Not rolled back again: {exc}."[:300]
        check.save(update_fields=["outcome"])
        logger.info("monitor: %s already moved: %s", deployment.model_version.key, exc)
        return
    check.rolled_back = True
    check.outcome = _who_decides_now(deployment)[:300]
    check.save(update_fields=["rolled_back", "outcome"])
    audit_record(
        actor=None,
        action="monitor.rollback",
        subject=check,
        after={
            "model": deployment.model_version.key,
            "role": deployment.role,
            "window_start": check.window_start.isoformat(),
            "window_end": check.window_end.isoformat(),
            "policy_version": check.policy.version if check.policy else None,
            "breaches": [c.name for c in result.breaches],
            "checks": check.checks,
            "outcome": check.outcome,
        },
        queue=deployment.queue,
        evidence=evidence,
    )


def deployment_monitor(*, deployment: Deployment, now: datetime, max_rows: int) -> MonitorCheck:
    """Look at one canary or live version's window, store the look, roll back on a breach.

    Call inside a transaction; the caller emails the admins once it has committed.
    """
    queue, version = deployment.queue, deployment.model_version
    policy = gate_policy_current(queue=queue)
    thresholds = monitor_thresholds(policy)
    start, end = monitor_window_bounds(deployment=deployment, policy=policy, now=now)
    read = monitor_window_read(
        model_version=version, start=start, end=end, thresholds=thresholds, max_rows=max_rows
    )
    result = monitor_evaluate(read.figures, thresholds)
    check = MonitorCheck.objects.create(
        queue=queue,
        model_version=version,
        role=deployment.role,
        policy=policy,
        window_start=start,
        window_end=end,
        verdict=result.verdict,
        checks=[c.as_json() for c in result.checks] + [{"name": READ_FACTS, **read.facts()}],
        sentence=_reason(_summary(result, version.key, deployment.role)),
        created_at=now,
    )
    if result.verdict == BREACH:
        _rollback(deployment, check, result)
    _prune(check)
    return check


def _email_body(check: MonitorCheck, deployment: Deployment) -> str:
    page = reverse("rollout:queue", kwargs={"slug": deployment.queue.slug})
    lines = [
        check.sentence,
        "",
        check.outcome,
        "",
        f"Window: {check.window_start:%Y-%m-%d %H:%M:%S} to {check.window_end:%H:%M:%S} UTC"
        f" (policy version {check.policy.version if check.policy else '?'}).",
        "",
    ]
    for item in check.checks:
        if item["name"] in CHECK_TITLES:
            lines.append(f"- {CHECK_TITLES[item['name']]} [{item['verdict']}]: {item['sentence']}")
    lines += [
        "",
        f"Evidence: monitor-check:{check.pk}. Rollout page: {settings.SHADOWLAB_BASE_URL}{page}",
    ]
    return "\n".join(lines)


def _notify(check: MonitorCheck, deployment: Deployment) -> None:
    """Email every active admin with an address; a mail failure is logged, never raised."""
    try:
        recipients = _admin_emails()
        subject = (
            f"[ShadowLab] {deployment.model_version.key} rolled back automatically on "
            f"{deployment.queue.name}"
        )
        body = _email_body(check, deployment)
        send_mass_mail(
            [(subject, body, None, [address]) for address in recipients], fail_silently=False
        )
    except Exception:
        logger.exception("monitor: could not email the admins about check %s", check.pk)


def _failure_record(deployment: Deployment, now: datetime, exc: Exception) -> None:
    text = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_MAX]
    try:
        with transaction.atomic():
            check = MonitorCheck.objects.create(
                queue_id=deployment.queue_id,
                model_version_id=deployment.model_version_id,
                role=deployment.role,
                window_start=now,
                window_end=now,
                verdict=MonitorCheck.Verdict.ERROR,
                checks=[],
                sentence=f"The monitor could not check {deployment.model_version.key}: {text}",
                created_at=now,
            )
            _prune(check)
    except DatabaseError:
        logger.exception("monitor: could not record the failure on %s", deployment)


def rollout_monitor_run(*, now: datetime | None = None) -> list[MonitorCheck]:
    """Look at every canary and live version now; return the stored looks.

    One version's failure is logged and stored as an error look; the others are still
    looked at. A version rolled back by an earlier look is in shadow and not looked at
    again, so running twice on the same window rolls nothing back twice.
    """
    now = now or timezone.now()
    max_rows = int(settings.SHADOWLAB["MONITOR_MAX_ROWS"])
    deployments = list(
        Deployment.objects.filter(role__in=[Deployment.Role.CANARY, Deployment.Role.LIVE])
        .select_related("queue", "model_version")
        .order_by("queue_id", "role")
    )
    checks = []
    for deployment in deployments:
        try:
            with transaction.atomic():
                # A savepoint: a database error here leaves the connection usable for the rest.
                check = deployment_monitor(deployment=deployment, now=now, max_rows=max_rows)
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: stop here, the next look starts afresh
        except Exception as exc:
            logger.exception("monitor: could not check %s", deployment)
            _failure_record(deployment, now, exc)
            continue
        checks.append(check)
        if check.rolled_back:
            _notify(check, deployment)
        logger.info(
            "monitor: %s %s on %s: %s",
            deployment.model_version.key,
            deployment.role,
            deployment.queue.slug,
            check.verdict,
        )
    return checks
