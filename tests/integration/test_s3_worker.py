"""A real worker process scoring with model files kept in an S3-compatible bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments.models import Prediction
from inspections.models import Item
from tests.s3_server import CREDENTIALS, S3Server

from .chaos import ItemStream, every_item_scored
from .conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BUCKET, PREFIX = S3Server.BUCKET, S3Server.PREFIX
ITEMS = 300


def test_a_worker_scores_every_item_with_a_model_it_copied_from_the_bucket(
    worker, s3_bucket, shadow_model, api_token, digit_rows, settings, tmp_path, figure
):
    version = shadow_model  # registered while the bucket is the storage (s3_bucket comes first)
    worker_copies = tmp_path / "worker-copies"
    worker.env.update(
        {
            **CREDENTIALS,
            "SHADOWLAB_MODEL_BUCKET": BUCKET,
            "SHADOWLAB_MODEL_BUCKET_PREFIX": PREFIX,
            "AWS_S3_ENDPOINT_URL": s3_bucket.url,
            "AWS_S3_ADDRESSING_STYLE": "path",
            "SHADOWLAB_MODEL_CACHE_DIR": str(worker_copies),
        }
    )
    worker.start()
    ItemStream(token=api_token, rows=digit_rows, count=ITEMS, chunk=50, seconds=3).start().join()
    wait_until(
        every_item_scored([version]),
        timeout=90,
        message=f"{Prediction.objects.count()} of {ITEMS} scored\n{worker.log()[-3000:]}",
    )
    assert Prediction.objects.filter(model_version=version, status="ok").count() == ITEMS
    assert Item.objects.count() == ITEMS
    copies = sorted(path.name for path in worker_copies.iterdir())
    assert f"{version.sha256[:40]}.onnx" in copies
    assert not any(Path(settings.MEDIA_ROOT).rglob("*.onnx")), "the worker read the bucket"
    figure("items scored from a bucket-held model", ITEMS)
    figure("model copies the worker made", len(copies))
