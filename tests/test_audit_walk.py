"""Every state change writes an audit event: who, when, the state before and after.

One walk through a model's life on a queue, calling each service that changes state the
way the pages and the API call it, then checking the event each one wrote. An event of
something that did not exist before (a registration, a request, a token) has no state
before: its before is null and its after describes the new thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from deployments.models import AuditEvent
from shadowlab import roles

pytestmark = [pytest.mark.django_db, pytest.mark.security]

CREATED, CHANGED = "created", "changed"


@dataclass
class Walk:
    problems: list[str]
    checked: list[str]

    def step(self, action: str, actor: User, kind: str, change: Callable[[], Any]) -> Any:
        """Make the change and check the event it wrote; return what the change returned."""
        last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        started = timezone.now()
        result = change()
        events = list(AuditEvent.objects.filter(id__gt=last, action=action).order_by("id"))
        self.checked.append(action)
        if not events:
            self.problems.append(f"{action}: no audit event")
            return result
        for event in events:
            where = f"{action} ({event.subject})"
            if event.actor != actor or event.actor_name != actor.get_username():
                self.problems.append(f"{where}: actor {event.actor_name}, not {actor}")
            if not started - timedelta(seconds=1) <= event.created_at <= timezone.now():
                self.problems.append(f"{where}: time {event.created_at} outside the change")
            if not isinstance(event.after, dict) or not event.after:
                self.problems.append(f"{where}: no state after")
            if kind == CREATED and event.before is not None:
                self.problems.append(f"{where}: a state before something that did not exist")
            if kind == CHANGED and (not isinstance(event.before, dict) or not event.before):
                self.problems.append(f"{where}: no state before")
            if kind == CHANGED and event.before == event.after:
                self.problems.append(f"{where}: before and after are the same")
        return result


def test_every_state_change_writes_an_audit_event_with_actor_time_before_and_after(
    queue, admin_user, ml_lead, inspector, digits_onnx, digits_split, client_for, figure
):
    from analytics.gate.evaluation import gate_evaluation_run
    from analytics.gate.policy import gate_policy_current, gate_policy_update
    from deployments.deferral import queue_deferral_threshold_set
    from deployments.promotions import (
        promotion_approve,
        promotion_reject,
        promotion_request_create,
    )
    from deployments.registry import model_version_register
    from deployments.rollout import kill_switch_set, rollout_rollback
    from deployments.services import deployment_retire, deployment_shadow_start
    from inspections.api_tokens import api_token_create, api_token_revoke
    from tests.deployments.rollout_factories import evaluation_make

    walk = Walk(problems=[], checked=[])
    gate_policy_current(queue=queue)

    version = walk.step(
        "model_version.register",
        admin_user,
        CREATED,
        lambda: model_version_register(
            queue=queue,
            name="walk",
            version="1",
            onnx_path=digits_onnx,
            reference=digits_split.train_x[:200],
            created_by=admin_user,
        ),
    )
    walk.step(
        "deployment.shadow_start",
        admin_user,
        CREATED,
        lambda: deployment_shadow_start(model_version=version, actor=admin_user),
    )
    walk.step(
        "gate_policy.update",
        admin_user,
        CHANGED,
        lambda: gate_policy_update(queue=queue, values={"window_days": 7}, actor=admin_user),
    )
    walk.step(
        "gate.evaluate",
        ml_lead,
        CREATED,
        lambda: gate_evaluation_run(model_version=version, actor=ml_lead),
    )

    def request() -> Any:
        return promotion_request_create(
            queue=queue,
            model_version=version,
            target="canary",
            share=0.05,
            evaluation=evaluation_make(version),
            actor=ml_lead,
            note="the evidence passed",
        )

    first = walk.step("promotion.request", ml_lead, CREATED, request)
    walk.step(
        "promotion.reject",
        admin_user,
        CHANGED,
        lambda: promotion_reject(request=first, actor=admin_user, comment="wait a week"),
    )
    second = walk.step("promotion.request", ml_lead, CREATED, request)
    walk.step(
        "promotion.approve",
        admin_user,
        CHANGED,
        lambda: promotion_approve(request=second, actor=admin_user, comment="go"),
    )
    walk.checked.append("deployment.canary_start")  # written by the approval, checked here
    canary = AuditEvent.objects.get(action="deployment.canary_start")
    assert (canary.actor, canary.before["role"], canary.after["role"]) == (
        admin_user,
        "shadow",
        "canary",
    )
    for on in (True, False):
        walk.step(
            "kill_switch.set",
            admin_user,
            CHANGED,
            lambda on=on: kill_switch_set(queue=queue, on=on, actor=admin_user),
        )
    walk.step(
        "deferral_threshold.set",
        admin_user,
        CHANGED,
        lambda: queue_deferral_threshold_set(queue=queue, threshold=0.8, actor=admin_user),
    )
    walk.step(
        "deployment.rollback",
        admin_user,
        CHANGED,
        lambda: rollout_rollback(
            queue=queue, model_version=version, actor=admin_user, reason="audit walk"
        ),
    )
    walk.step(
        "deployment.retire",
        admin_user,
        CHANGED,
        lambda: deployment_retire(deployment=version.deployments.get(), actor=admin_user),
    )
    token = walk.step(
        "api_token.issue",
        admin_user,
        CREATED,
        lambda: api_token_create(queue=queue, name="walk", created_by=admin_user)[0],
    )
    walk.step(
        "api_token.revoke",
        admin_user,
        CHANGED,
        lambda: api_token_revoke(token=token, actor=admin_user),
    )

    # A role change happens in Django's admin: the inspector becomes an ml_lead.
    root = User.objects.create_superuser("root", password="x")
    roles.groups_sync()
    lead_group = Group.objects.get(name=roles.ML_LEAD)
    walk.step(
        "user.roles",
        root,
        CHANGED,
        lambda: client_for(root).post(
            f"/admin/auth/user/{inspector.pk}/change/",
            {
                "username": inspector.username,
                "is_active": "on",
                "groups": [lead_group.pk],
                "date_joined_0": "2026-01-05",
                "date_joined_1": "09:00:00",
            },
        ),
    )
    assert list(inspector.groups.values_list("name", flat=True)) == [roles.ML_LEAD]

    figure("state changes walked", len(walk.checked))
    figure("state changes without a full audit event", len(walk.problems))
    assert not walk.problems, "\n".join(walk.problems)


def test_a_refused_change_writes_no_event(queue, ml_lead, inspector):
    """The walk's other half: what did not happen is not in the log either."""
    from django.core.exceptions import PermissionDenied

    from deployments.rollout import kill_switch_set
    from inspections.api_tokens import api_token_create

    for refused in (
        lambda: kill_switch_set(queue=queue, on=True, actor=ml_lead),
        lambda: api_token_create(queue=queue, created_by=inspector),
    ):
        with pytest.raises(PermissionDenied):
            refused()
    assert not AuditEvent.objects.exists()
