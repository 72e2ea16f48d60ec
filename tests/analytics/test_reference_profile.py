"""Reference profiles are built on the worker, never by a report request."""

from __future__ import annotations

import pytest

from analytics import tasks
from analytics.days import utc_today
from analytics.models import ReferenceProfile
from analytics.registry import report_build
from analytics.selectors import ReportScope

pytestmark = pytest.mark.django_db


def test_a_drift_report_without_a_profile_builds_none(queue, shadow_model):
    ReferenceProfile.objects.filter(model_version=shadow_model).delete()
    today = utc_today()
    scope = ReportScope(queue=queue, model_version=shadow_model, since=today, until=today)
    report_build(kind="drift", scope=scope, options={})
    assert not ReferenceProfile.objects.filter(model_version=shadow_model).exists()


def test_the_worker_task_builds_the_profile_once(shadow_model):
    tasks.reference_profile_build(shadow_model.pk)
    first = ReferenceProfile.objects.get(model_version=shadow_model)
    tasks.reference_profile_build(shadow_model.pk)
    assert ReferenceProfile.objects.get(model_version=shadow_model).pk == first.pk
    assert first.rows > 0


def test_registration_queues_the_profile_build_after_commit(
    queue, digits_onnx, digits_split, admin_user, django_capture_on_commit_callbacks, monkeypatch
):
    from deployments.registry import model_version_register

    queued: list[int] = []
    monkeypatch.setattr(tasks.reference_profile_build, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        version = model_version_register(
            queue=queue,
            name="digits-mlp",
            version="2",
            onnx_path=digits_onnx,
            reference=digits_split.train_x,
            created_by=admin_user,
        )
    assert queued == [version.pk]
