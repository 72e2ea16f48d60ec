"""Tags written back to a real MLflow server by a real worker process after a rollout move."""

from __future__ import annotations

import time
from io import StringIO

import onnx
import pytest
from django.core.management import call_command

from deployments import transitions
from deployments.models import ModelVersion
from deployments.rollout import rollout_move
from tests.deployments.mlflow_server import mlflow_server_running

from .conftest import WorkerProcess, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_writes_the_new_rollout_state_to_the_mlflow_version(
    worker: WorkerProcess, queue, digits_onnx, settings, tmp_path, figure
):
    import mlflow

    with mlflow_server_running(tmp_path) as server:
        client = mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)
        mlflow.set_tracking_uri(server.url)
        mlflow.set_registry_uri(server.url)
        with mlflow.start_run():
            mlflow.onnx.log_model(
                onnx.load(str(digits_onnx)), name="model", registered_model_name="digits"
            )
        settings.MLFLOW_TRACKING_URI = server.url
        call_command(
            "register_model",
            "--tag-back",
            queue="digits",
            from_mlflow="models:/digits/1",
            stdout=StringIO(),
        )
        model_version = ModelVersion.objects.get(name="digits", version="1")
        worker.env["MLFLOW_TRACKING_URI"] = server.url
        worker.start()

        started = time.monotonic()
        rollout_move(model_version=model_version, move=transitions.SHADOW_START, actor=None)
        figure("rollout move with tag-back queued", f"{time.monotonic() - started:.3f} s")

        def tagged() -> bool:
            # One request per tag, updated_at last: once it is there, the write is whole.
            tags = client.get_model_version("digits", "1").tags
            return "shadowlab.updated_at" in tags

        wait_until(tagged, timeout=60, message=f"no tags written; see {worker.log_path}")
        figure("move to tag in mlflow", f"{time.monotonic() - started:.2f} s")
        tags = client.get_model_version("digits", "1").tags
        assert tags["shadowlab.rollout_state"] == "shadow"
        assert tags["shadowlab.gate_verdict"] == "not_evaluated"
