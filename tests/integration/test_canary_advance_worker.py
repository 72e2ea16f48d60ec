"""Auto-advance through the real broker and a real worker process, as beat sends it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.models import AuditEvent, Deployment
from deployments.tasks import canaries_advance
from tests.deployments.rollout_factories import (
    audit_sample_make,
    auto_advance_policy_make,
    deployment_make,
    version_make,
)

from .conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_running_the_beat_task_advances_a_soaked_canary_one_step(worker, queue):
    auto_advance_policy_make(queue)
    version = version_make(queue, "2")
    deployment = deployment_make(version, "canary", 0.05)
    step = timezone.now() - timedelta(hours=2)
    Deployment.objects.filter(pk=deployment.pk).update(share_changed_at=step)
    audit_sample_make(version, n=150, received_at=step + timedelta(minutes=5))
    worker.start()

    canaries_advance.delay()

    wait_until(
        lambda: Deployment.objects.get(pk=deployment.pk).traffic_share == 0.25,
        timeout=60,
        message=f"the canary did not advance; see {worker.log_path}",
    )
    event = AuditEvent.objects.get(action="deployment.canary_share_raise")
    assert event.actor_name == "system" and event.evidence.startswith("gate-evaluation:")
    assert "canary advance queue=digits model=digits-mlp:2 outcome=advanced" in worker.log()
