"""A real worker process scoring with model files kept in an S3-compatible bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployments.models import Prediction
from deployments.registry import model_version_register
from deployments.runtime import runners_clear
from deployments.services import deployment_shadow_start
from inspections.models import Item
from tests.s3_server import CREDENTIALS, bucket_storage_use, s3_server_running

from .chaos import ItemStream, every_item_scored
from .conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BUCKET = "shadowlab-models"
PREFIX = "shadow"
ITEMS = 300


def test_a_worker_scores_every_item_with_a_model_it_copied_from_the_bucket(
    worker,
    queue,
    digits_onnx,
    digits_split,
    admin_user,
    api_token,
    digit_rows,
    settings,
    tmp_path,
    monkeypatch,
    figure,
):
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with s3_server_running(tmp_path, bucket=BUCKET) as s3:
        bucket_storage_use(settings, s3, bucket=BUCKET, prefix=PREFIX)
        runners_clear()
        version = model_version_register(
            queue=queue,
            name="digits-mlp",
            version="s3",
            onnx_path=digits_onnx,
            reference=digits_split.train_x,
            created_by=admin_user,
        )
        deployment_shadow_start(model_version=version, actor=admin_user)
        worker_copies = tmp_path / "worker-copies"
        worker.env.update(
            {
                **CREDENTIALS,
                "SHADOWLAB_MODEL_BUCKET": BUCKET,
                "SHADOWLAB_MODEL_BUCKET_PREFIX": PREFIX,
                "AWS_S3_ENDPOINT_URL": s3.url,
                "AWS_S3_ADDRESSING_STYLE": "path",
                "SHADOWLAB_MODEL_CACHE_DIR": str(worker_copies),
            }
        )
        worker.start()
        ItemStream(
            token=api_token, rows=digit_rows, count=ITEMS, chunk=50, seconds=3
        ).start().join()
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
