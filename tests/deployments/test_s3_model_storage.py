"""Model files in an S3-compatible bucket (SHADOWLAB_MODEL_BUCKET) through django-storages.

The bucket is served over HTTP by a separate process (tests/s3_server.py); registration,
scoring and quantization run unchanged on it, and what comes back from it is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deployments import scoring
from deployments.model_files import (
    MODEL_CACHE_GRACE_SECONDS,
    ModelFileInvalid,
    ModelFileUnavailable,
    model_file_local,
)
from deployments.models import ModelVersion, Prediction
from deployments.registry import model_version_quantize, reference_data
from deployments.runtime import runners_clear
from deployments.scoring_cache import model_versions_forget
from deployments.tasks import score_items
from inspections.services import item_create
from tests.s3_server import CREDENTIALS, S3Server

pytestmark = pytest.mark.django_db

BUCKET, PREFIX = S3Server.BUCKET, S3Server.PREFIX
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bucket_model(s3_bucket, model_version) -> ModelVersion:
    """The demo model, registered while the bucket is the storage (s3_bucket is set up first)."""
    return model_version


def _items(queue, rows):
    return [
        item_create(queue=queue, external_id=f"b{n}", features=[float(v) for v in row])
        for n, row in enumerate(rows)
    ]


def _forget_local_copies(settings) -> None:
    runners_clear()
    model_versions_forget()
    for path in Path(settings.MODEL_CACHE_DIR).glob("*"):
        path.unlink()


def test_a_registered_model_is_stored_in_the_bucket_and_scored_from_a_checked_copy(
    s3_bucket, bucket_model, queue, digit_rows, digits_split, settings
):
    keys = s3_bucket.keys(BUCKET)
    assert [key for key in keys if key.endswith(".onnx")] == [
        f"{PREFIX}/{bucket_model.onnx_file.name}"
    ]
    assert f"{PREFIX}/{bucket_model.reference_file.name}" in keys
    assert not any(Path(settings.MEDIA_ROOT).rglob("*.onnx")), "nothing is written to local media"
    np.testing.assert_array_equal(reference_data(bucket_model), digits_split.train_x)

    items = _items(queue, digit_rows[:30])
    summary = scoring.predictions_score(
        model_version_id=bucket_model.pk, item_ids=[item.pk for item in items]
    )
    assert (summary.scored, summary.errors) == (30, 0)
    copy = Path(settings.MODEL_CACHE_DIR) / f"{bucket_model.sha256[:40]}.onnx"
    assert copy.is_file() and copy.stat().st_size == bucket_model.size_bytes
    assert model_file_local(bucket_model.onnx_file, sha256=bucket_model.sha256) == copy


def test_a_file_replaced_in_the_bucket_is_refused_never_run(
    s3_bucket, bucket_model, queue, digit_rows, settings
):
    s3_bucket.client().put_object(
        Bucket=BUCKET, Key=f"{PREFIX}/{bucket_model.onnx_file.name}", Body=b"not the model"
    )
    _forget_local_copies(settings)
    items = _items(queue, digit_rows[:5])
    scoring.predictions_score(model_version_id=bucket_model.pk, item_ids=[i.pk for i in items])
    reasons = set(Prediction.objects.values_list("reason", flat=True))
    assert len(reasons) == 1
    assert "changed since registration" in reasons.pop()
    assert not list(Path(settings.MODEL_CACHE_DIR).glob("*.onnx"))


def test_a_file_missing_from_the_bucket_or_over_the_size_cap_is_refused(
    s3_bucket, bucket_model, settings
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 1000}
    with pytest.raises(ModelFileInvalid, match="larger than 1,000 bytes"):
        model_file_local(bucket_model.onnx_file, sha256=bucket_model.sha256)
    s3_bucket.client().delete_object(Bucket=BUCKET, Key=f"{PREFIX}/{bucket_model.onnx_file.name}")
    with pytest.raises(ModelFileInvalid, match="missing"):
        model_file_local(bucket_model.onnx_file, sha256=bucket_model.sha256)
    leftovers = list(Path(settings.MODEL_CACHE_DIR).iterdir())
    assert leftovers == [], "a refused download leaves no partial file behind"


def test_a_bucket_that_does_not_answer_leaves_the_items_for_a_later_try(
    s3_bucket, bucket_model, queue, digit_rows, settings
):
    _forget_local_copies(settings)
    s3_bucket.stop()
    items = _items(queue, digit_rows[:5])
    with pytest.raises(ModelFileUnavailable, match="model storage did not give"):
        scoring.predictions_score(model_version_id=bucket_model.pk, item_ids=[i.pk for i in items])
    assert Prediction.objects.count() == 0, "no item gets an error for an outage"
    # The scoring task tries again with backoff; past that the sweeper queues the items again.
    assert ModelFileUnavailable in score_items.autoretry_for


def test_an_int8_variant_is_made_from_the_bucket_and_stored_there(s3_bucket, bucket_model):
    int8 = model_version_quantize(model_version=bucket_model)
    assert int8.variant == ModelVersion.Variant.INT8
    assert f"{PREFIX}/{int8.onnx_file.name}" in s3_bucket.keys(BUCKET)
    assert int8.notes["top1_agreement_with_parent"] >= 0.97


def test_the_settings_build_the_bucket_storage_from_the_environment(tmp_path):
    env = {
        **os.environ,
        **CREDENTIALS,
        "SHADOWLAB_VAR_DIR": str(tmp_path),
        "SHADOWLAB_MODEL_BUCKET": "models",
        "SHADOWLAB_MODEL_BUCKET_PREFIX": "/prod/",
        "AWS_S3_ENDPOINT_URL": "http://minio.internal:9000",
        "AWS_S3_REGION_NAME": "eu-west-1",
        "AWS_S3_ADDRESSING_STYLE": "path",
        "SHADOWLAB_MODEL_CACHE_DIR": str(tmp_path / "copies"),
    }
    script = (
        "import django, json; django.setup(); "
        "from django.conf import settings; "
        "from django.core.files.storage import storages; "
        "s = storages['default']; "
        "print(json.dumps([type(s).__name__, s.bucket_name, s.location, s.endpoint_url, "
        "s.region_name, s.client_config.s3['addressing_style'], s.file_overwrite, "
        "str(settings.MODEL_CACHE_DIR)]))"
    )
    answer = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(answer.stdout.splitlines()[-1]) == [
        "S3Storage",
        "models",
        "prod",
        "http://minio.internal:9000",
        "eu-west-1",
        "path",
        False,
        str(tmp_path / "copies"),
    ]


def test_copies_past_the_cache_budget_are_deleted_and_downloaded_again_when_needed(
    s3_bucket, bucket_model, settings
):
    _forget_local_copies(settings)
    parent = model_file_local(bucket_model.onnx_file, sha256=bucket_model.sha256)
    settings.MODEL_CACHE_MAX_BYTES = bucket_model.size_bytes  # room for one copy
    long_ago = time.time() - 2 * MODEL_CACHE_GRACE_SECONDS
    os.utime(parent, (long_ago, long_ago))

    int8 = model_version_quantize(model_version=bucket_model)  # reads the parent's copy
    os.utime(parent, (long_ago, long_ago))
    copy = model_file_local(int8.onnx_file, sha256=int8.sha256)
    assert copy.is_file() and not parent.exists(), "the copy used least recently went"

    again = model_file_local(bucket_model.onnx_file, sha256=bucket_model.sha256)
    assert again == parent and parent.is_file(), "a deleted copy is downloaded again"
    assert copy.is_file(), "the INT8 copy was used within the grace period: it stays"
