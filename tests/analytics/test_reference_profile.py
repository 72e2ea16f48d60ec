"""Reference profiles are built on the worker, never by a report request."""

from __future__ import annotations

import numpy as np
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


def test_the_profile_keeps_each_features_range_and_few_valued_features(shadow_model, digits_split):
    from analytics.services import profile_bins, reference_profile_build
    from analytics.stats.binning import reference_bins_with_range_by_feature

    profile = reference_profile_build(model_version=shadow_model)
    assert profile is not None
    profile.refresh_from_db()
    expected = reference_bins_with_range_by_feature(digits_split.train_x)
    assert profile.format == ReferenceProfile.CURRENT_FORMAT
    assert profile.feature_minimum == [b.minimum for b in expected]
    assert profile.feature_maximum == [b.maximum for b in expected]
    # Pixel intensities take at most 17 values: every feature gets a bin per value.
    assert all(profile.feature_categorical)
    for stored, built in zip(profile_bins(profile), expected, strict=True):
        assert np.array_equal(stored.fine_edges, built.fine_edges)  # exact through JSON
        assert np.array_equal(stored.coarse_edges, built.coarse_edges)
        assert (stored.categorical, stored.minimum, stored.maximum) == (
            built.categorical,
            built.minimum,
            built.maximum,
        )


def test_the_worker_rebuilds_a_profile_of_the_older_format(shadow_model):
    from analytics.services import reference_profile_ensure

    tasks.reference_profile_build(shadow_model.pk)
    ReferenceProfile.objects.filter(model_version=shadow_model).update(
        format=1, feature_minimum=None, feature_maximum=None, feature_categorical=None
    )
    profile = reference_profile_ensure(model_version=shadow_model)
    assert profile is not None
    assert profile.format == ReferenceProfile.CURRENT_FORMAT
    assert profile.feature_maximum is not None and len(profile.feature_maximum) == 64


def test_a_profile_of_the_older_format_knows_no_range(shadow_model):
    from analytics.services import profile_bins

    tasks.reference_profile_build(shadow_model.pk)
    ReferenceProfile.objects.filter(model_version=shadow_model).update(format=1)
    bins = profile_bins(ReferenceProfile.objects.get(model_version=shadow_model))
    assert all(b.minimum == -np.inf and b.maximum == np.inf for b in bins)
    assert not any(b.categorical for b in bins)
