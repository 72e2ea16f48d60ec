"""register_model --from-mlflow against a real MLflow tracking server and registry."""

from __future__ import annotations

import time
from io import StringIO
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from analytics.gate.evaluation import gate_evaluation_run
from deployments import mlflow_tags, tasks, transitions
from deployments.models import AuditEvent, ModelVersion
from deployments.rollout import rollout_move
from deployments.runtime import ModelRunner
from tests.deployments.mlflow_server import MlflowServer, free_port, mlflow_server_running

pytestmark = pytest.mark.django_db


class Logged:
    """What the module's MLflow server holds, logged through MLflow's own API."""

    def __init__(self, server: MlflowServer) -> None:
        self.server = server
        self.runs: dict[str, str] = {}
        self.sklearn_model: Any = None


def _log_models(server: MlflowServer, onnx_path: Path, split: Any, tmp: Path) -> Logged:
    import mlflow
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    logged = Logged(server)
    reference = tmp / "reference.npy"
    np.save(reference, split.train_x[:300].astype(np.float32))
    with mlflow.start_run() as run:
        mlflow.onnx.log_model(
            onnx.load(str(onnx_path)), name="model", registered_model_name="digits-onnx"
        )
        mlflow.log_artifact(str(reference))
    logged.runs["onnx"] = run.info.run_id

    model = LogisticRegression(max_iter=500).fit(split.train_x, split.train_y)
    logged.sklearn_model = model
    rows = tmp / "rows.csv"
    header = ",".join(f"p{i}" for i in range(split.train_x.shape[1]))
    np.savetxt(rows, split.train_x[:120], delimiter=",", header=header, comments="")
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", registered_model_name="digits-sk")
        mlflow.log_artifact(str(rows), artifact_path="data")
    logged.runs["sklearn"] = run.info.run_id
    mlflow.MlflowClient().set_registered_model_alias("digits-sk", "champion", "1")

    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="digits-pickled",
            serialization_format="cloudpickle",
        )
    half = split.train_y < 5
    small = LogisticRegression(max_iter=300).fit(split.train_x[half], split.train_y[half])
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(small, name="model", registered_model_name="digits-five")

    odd = tmp / "odd"
    odd.mkdir()
    (odd / "MLmodel").write_text("flavors:\n  keras:\n    data: model.keras\n")
    (odd / "model.keras").write_bytes(b"not a model")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(odd), artifact_path="odd")
    logged.runs["odd"] = run.info.run_id
    return logged


@pytest.fixture(scope="module")
def mlflow_logged(tmp_path_factory, digits_onnx, digits_split):
    """One MLflow server for the module, holding the models the tests register."""
    root = tmp_path_factory.mktemp("mlflow")
    with mlflow_server_running(root) as server:
        yield _log_models(server, digits_onnx, digits_split, tmp_path_factory.mktemp("logged"))


@pytest.fixture
def tracking(settings, mlflow_logged) -> Logged:
    settings.MLFLOW_TRACKING_URI = mlflow_logged.server.url
    return mlflow_logged


def _register(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command("register_model", *args, stdout=out, queue="digits", **options)
    return out.getvalue()


def test_an_onnx_model_version_is_registered_with_its_source_and_the_runs_reference(
    queue, tracking, ml_lead, figure
):
    figure("mlflow server start", f"{tracking.server.started_in_s:.1f} s")
    started = time.monotonic()
    out = _register(from_mlflow="models:/digits-onnx/1", user="lead")
    figure("register from mlflow (onnx)", f"{time.monotonic() - started:.2f} s")

    model_version = ModelVersion.objects.get(name="digits-onnx", version="1")
    assert model_version.mlflow_source == {
        "tracking_uri": tracking.server.url,
        "uri": "models:/digits-onnx/1",
        "run_id": tracking.runs["onnx"],
        "model_name": "digits-onnx",
        "model_version": "1",
        "flavour": "onnx",
        "reference": "reference.npy",
        "tag_back": False,
    }
    assert model_version.reference_rows == 300
    assert model_version.created_by == ml_lead
    assert "models:/digits-onnx/1" in out
    event = AuditEvent.objects.get(action="model_version.register")
    assert event.after["mlflow_source"]["run_id"] == tracking.runs["onnx"]


def test_a_sklearn_model_by_alias_is_converted_to_onnx_that_predicts_like_it(
    queue, tracking, digits_split
):
    _register(
        from_mlflow="models:/digits-sk@champion",
        name="digits-logreg",
        version="7",
        reference="data/rows.csv",
    )

    model_version = ModelVersion.objects.get(name="digits-logreg", version="7")
    assert model_version.mlflow_source["flavour"] == "sklearn"
    assert model_version.mlflow_source["model_version"] == "1"
    assert model_version.mlflow_source["run_id"] == tracking.runs["sklearn"]
    assert model_version.reference_rows == 120
    runner = ModelRunner(
        Path(model_version.onnx_file.path),
        input_name=model_version.input_name,
        probability_output=model_version.probability_output,
        input_width=model_version.input_width,
    )
    rows = digits_split.holdout_x[:200].astype(np.float32)
    probabilities = runner.predict(rows).probabilities
    expected = tracking.sklearn_model.predict_proba(rows)
    assert np.abs(probabilities - expected).max() < 1e-4


def test_a_run_artifact_is_registered_under_the_name_and_version_given(queue, tracking):
    run_id = tracking.runs["onnx"]
    with pytest.raises(CommandError, match="needs --name and --version"):
        _register(from_mlflow=f"runs:/{run_id}/model")

    _register(from_mlflow=f"runs:/{run_id}/model", name="from-run", version="1")

    source = ModelVersion.objects.get(name="from-run").mlflow_source
    assert (source["run_id"], source["model_name"], source["model_version"]) == (run_id, "", "")


def test_the_model_version_page_shows_where_the_model_came_from(queue, tracking, client, ml_lead):
    _register(from_mlflow="models:/digits-onnx/1", name="shown", version="1")
    client.force_login(ml_lead)

    page = client.get(reverse("models:version", args=["shown:1"])).content.decode()

    assert "MLflow source" in page
    assert "models:/digits-onnx/1" in page
    assert tracking.runs["onnx"] in page


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/no-such-model/1", "has no version 1 of registered model 'no-such-model'"),
        ("models:/digits-onnx/9", "has no version 9 of registered model 'digits-onnx'"),
        ("models:/digits-sk@nobody", "has no registered model 'digits-sk' with alias 'nobody'"),
        ("s3://bucket/model.onnx", "is not an MLflow model URI"),
    ],
)
def test_an_unknown_model_is_refused_with_a_clear_error(queue, tracking, uri, message):
    with pytest.raises(CommandError, match=message):
        _register(from_mlflow=uri)
    assert not ModelVersion.objects.exists()


def test_an_unreachable_server_is_refused_in_seconds(queue, settings, figure):
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()

    with pytest.raises(CommandError, match="could not be reached"):
        _register(from_mlflow="models:/digits-onnx/1")

    elapsed = time.monotonic() - started
    figure("unreachable mlflow refused after", f"{elapsed:.1f} s")
    assert elapsed < 30


def test_a_missing_tracking_uri_is_refused(queue, settings):
    settings.MLFLOW_TRACKING_URI = ""
    with pytest.raises(CommandError, match="MLFLOW_TRACKING_URI is not set"):
        _register(from_mlflow="models:/digits-onnx/1")


def test_a_model_neither_onnx_nor_sklearn_is_refused(queue, tracking):
    with pytest.raises(CommandError, match=r"neither onnx nor sklearn \(it has: keras\)"):
        _register(from_mlflow=f"runs:/{tracking.runs['odd']}/odd", name="odd", version="1")
    assert not ModelVersion.objects.exists()


def test_a_pickled_sklearn_model_is_refused_unloaded(queue, tracking):
    with pytest.raises(CommandError, match="saved as cloudpickle; only skops"):
        _register(from_mlflow="models:/digits-pickled/1")


def test_a_model_from_mlflow_passes_the_same_checks_as_an_uploaded_file(queue, tracking):
    with pytest.raises(CommandError, match="model refused"):
        _register(from_mlflow="models:/digits-five/1")
    assert not ModelVersion.objects.exists()


def test_a_model_from_mlflow_is_not_registered_twice(queue, tracking):
    _register(from_mlflow="models:/digits-onnx/1")
    with pytest.raises(CommandError, match="already registered"):
        _register(from_mlflow="models:/digits-onnx/1")


def _mlflow_tags(server: MlflowServer, name: str, version: str) -> dict[str, str]:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=server.url, registry_uri=server.url)
    tags = client.get_model_version(name, version).tags
    return {key: value for key, value in tags.items() if key.startswith("shadowlab.")}


def _tag_writes(callbacks: list[Any]) -> list[int]:
    return [
        callback.args[0]
        for callback in callbacks
        if getattr(callback, "func", None) is mlflow_tags._tags_write_send
    ]


def test_tag_back_writes_the_rollout_state_and_gate_verdict_to_the_mlflow_version(
    queue, tracking, django_capture_on_commit_callbacks, figure
):
    _register("--tag-back", from_mlflow="models:/digits-sk/1", name="tagged", version="1")
    model_version = ModelVersion.objects.get(name="tagged")
    assert model_version.mlflow_source["tag_back"] is True

    with django_capture_on_commit_callbacks() as callbacks:
        rollout_move(model_version=model_version, move=transitions.SHADOW_START, actor=None)
    assert _tag_writes(callbacks) == [model_version.pk]
    started = time.monotonic()
    written = tasks.mlflow_tags_write(model_version.pk)
    figure("tags written to mlflow", f"{time.monotonic() - started:.2f} s")
    assert written is None  # the task returns nothing: nobody reads a result
    tags = _mlflow_tags(tracking.server, "digits-sk", "1")
    assert tags["shadowlab.rollout_state"] == "shadow"
    assert tags["shadowlab.gate_verdict"] == "not_evaluated"
    assert tags["shadowlab.model_version"] == "tagged:1"

    with django_capture_on_commit_callbacks() as callbacks:
        evaluation = gate_evaluation_run(model_version=model_version, actor=None)
    assert _tag_writes(callbacks) == [model_version.pk]
    mlflow_tags.mlflow_tags_write(model_version_id=model_version.pk)
    tags = _mlflow_tags(tracking.server, "digits-sk", "1")
    assert tags["shadowlab.gate_verdict"] == evaluation.verdict
    assert tags["shadowlab.gate_evaluation"] == str(evaluation.pk)
    assert tags["shadowlab.rollout_state"] == "shadow"


def test_without_tag_back_nothing_is_queued_or_written(
    queue, tracking, django_capture_on_commit_callbacks
):
    _register(from_mlflow="models:/digits-onnx/1", name="quiet", version="1")
    model_version = ModelVersion.objects.get(name="quiet")

    with django_capture_on_commit_callbacks() as callbacks:
        rollout_move(model_version=model_version, move=transitions.SHADOW_START, actor=None)

    assert _tag_writes(callbacks) == []
    assert mlflow_tags.mlflow_tags_write(model_version_id=model_version.pk) == {}
    assert "shadowlab.rollout_state" not in _mlflow_tags(tracking.server, "digits-onnx", "1")


def test_tag_back_needs_a_registered_model_version(queue, tracking):
    with pytest.raises(CommandError, match="use a models:/ URI"):
        _register(
            "--tag-back", from_mlflow=f"runs:/{tracking.runs['onnx']}/model", name="r", version="1"
        )


def test_an_unreachable_mlflow_makes_the_tag_write_retry(model_version, settings):
    url = f"http://127.0.0.1:{free_port()}"
    settings.MLFLOW_TRACKING_URI = url
    ModelVersion.objects.filter(pk=model_version.pk).update(
        mlflow_source={
            "tracking_uri": url,
            "model_name": "m",
            "model_version": "1",
            "tag_back": True,
        }
    )

    with pytest.raises(mlflow_tags.MlflowUnreachable):
        mlflow_tags.mlflow_tags_write(model_version_id=model_version.pk)


def test_tags_are_not_written_to_another_server_than_the_models(model_version, settings):
    settings.MLFLOW_TRACKING_URI = f"http://127.0.0.1:{free_port()}"
    ModelVersion.objects.filter(pk=model_version.pk).update(
        mlflow_source={
            "tracking_uri": "http://mlflow.example:5000",
            "model_name": "m",
            "model_version": "1",
            "tag_back": True,
        }
    )

    assert mlflow_tags.mlflow_tags_write(model_version_id=model_version.pk) == {}


def test_a_model_larger_than_the_upload_limit_is_refused_before_it_is_downloaded(
    queue, tracking, settings
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 1000}

    with pytest.raises(CommandError, match="more than 200 files or 2,000 bytes; it is not down"):
        _register(from_mlflow="models:/digits-onnx/1")
    assert not ModelVersion.objects.exists()
