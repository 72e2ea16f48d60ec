"""Take a model version from an MLflow tracking server and registry into ShadowLab's registry.

The model arrives as MLflow's ONNX flavour, or as its scikit-learn flavour (saved with
skops) which is converted to ONNX with skl2onnx here. Either way it then goes through
model_version_register, so it passes exactly the checks of an uploaded file.

Reference data for drift: a file or run artifact named on the command line, or else an
artifact named reference.npy or reference.csv in the model's own folder or at the root of
the run that logged it.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User

from deployments.models import ModelVersion
from deployments.onnx_checks import ModelRejected
from deployments.registry import model_version_register, reference_load
from inspections.models import Queue

if TYPE_CHECKING:
    from mlflow import MlflowClient

REFERENCE_NAMES = ("reference.npy", "reference.csv")
ONNX_TARGET_OPSET = 17
MAX_MODEL_FILES = 200

_MODEL_VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
_MODEL_ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[\w-]+)$")
_RUN_URI = re.compile(r"^runs:/(?P<run_id>[0-9a-zA-Z]+)/(?P<path>[^\s]+)$")


class MlflowSourceError(ModelRejected):
    """The model could not be taken from MLflow: unknown, unreachable, or of no usable flavour."""


@dataclass(frozen=True)
class MlflowModelRef:
    """A parsed MLflow model URI: a registered version, an alias, or a run's artifact path."""

    uri: str
    name: str = ""
    version: str = ""
    alias: str = ""
    run_id: str = ""
    path: str = ""


@dataclass(frozen=True)
class MlflowModel:
    """A model taken from MLflow: its ONNX file on disk and where it came from."""

    onnx_path: Path
    flavour: str
    source: dict[str, object]
    reference_path: Path | None


def mlflow_uri_parse(uri: str) -> MlflowModelRef:
    """Parse models:/<name>/<version>, models:/<name>@<alias> or runs:/<run_id>/<path>."""
    uri = uri.strip()
    if match := _MODEL_VERSION_URI.match(uri):
        return MlflowModelRef(uri=uri, name=match["name"], version=match["version"])
    if match := _MODEL_ALIAS_URI.match(uri):
        return MlflowModelRef(uri=uri, name=match["name"], alias=match["alias"])
    if match := _RUN_URI.match(uri):
        return MlflowModelRef(uri=uri, run_id=match["run_id"], path=match["path"].strip("/"))
    raise MlflowSourceError(
        f"'{uri}' is not an MLflow model URI: use models:/<name>/<version>, "
        "models:/<name>@<alias> or runs:/<run_id>/<path>"
    )


def tracking_uri_get() -> str:
    """Return the MLflow tracking URI from the settings, or raise MlflowSourceError."""
    uri = str(getattr(settings, "MLFLOW_TRACKING_URI", "") or "").strip()
    if not uri:
        raise MlflowSourceError("MLFLOW_TRACKING_URI is not set: where is the MLflow server?")
    return uri


def mlflow_client(tracking_uri: str) -> MlflowClient:
    """Return an MLflow client that fails within seconds when the server is down."""
    # MLflow's own defaults retry for minutes with backoff; a person waits at the command
    # line and a worker holds a slot. The operator's own environment still wins.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    # ShadowLab runs offline: no usage reports to MLflow's telemetry service.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _mlflow_error(exc: Exception, *, what: str, tracking_uri: str) -> MlflowSourceError:
    """Turn an MLflow client failure into a sentence: unknown thing or unreachable server."""
    code = getattr(exc, "error_code", "")
    # An unknown alias comes back as an invalid parameter that was "not found".
    missing = code == "INVALID_PARAMETER_VALUE" and "not found" in str(exc).lower()
    if missing or code == "RESOURCE_DOES_NOT_EXIST" or "RESOURCE_DOES_NOT_EXIST" in str(exc):
        return MlflowSourceError(f"MLflow at {uri_without_credentials(tracking_uri)} has no {what}")
    if code in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST"):
        return MlflowSourceError(
            f"MLflow at {uri_without_credentials(tracking_uri)} refused {what}: {_first_line(exc)}"
        )
    return MlflowSourceError(
        f"MLflow at {uri_without_credentials(tracking_uri)} could not be reached or did not answer "
        f"({type(exc).__name__}: {_first_line(exc)})"
    )


def uri_without_credentials(uri: str) -> str:
    """Return the URI without a user name or password, fit to store and show."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


def _resolve(client: MlflowClient, ref: MlflowModelRef, *, tracking_uri: str) -> dict[str, object]:
    """Return the source record of the reference: run id, registered name and version."""
    if ref.run_id:
        what = f"run {ref.run_id}"
    elif ref.alias:
        what = f"registered model '{ref.name}' with alias '{ref.alias}'"
    else:
        what = f"version {ref.version} of registered model '{ref.name}'"
    try:
        if ref.run_id:
            run = client.get_run(ref.run_id)
            return {"run_id": run.info.run_id, "model_name": "", "model_version": ""}
        if ref.alias:
            found = client.get_model_version_by_alias(ref.name, ref.alias)
        else:
            found = client.get_model_version(ref.name, ref.version)
    except Exception as exc:
        raise _mlflow_error(exc, what=what, tracking_uri=tracking_uri) from exc
    if found is None:
        raise MlflowSourceError(f"MLflow at {uri_without_credentials(tracking_uri)} has no {what}")
    return {
        "run_id": found.run_id or "",
        "model_name": found.name,
        "model_version": str(found.version),
    }


def _download(*, artifact_uri: str, dst: Path, tracking_uri: str, what: str) -> Path:
    import mlflow.artifacts

    try:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=artifact_uri,
            dst_path=str(dst),
            tracking_uri=tracking_uri,
            registry_uri=tracking_uri,
        )
    except Exception as exc:
        raise _mlflow_error(exc, what=what, tracking_uri=tracking_uri) from exc
    return Path(local)


def _size_check(*, artifact_uri: str, tracking_uri: str, max_bytes: int) -> int:
    """Return the bytes of the model's folder, or refuse it before anything is downloaded."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        repository = get_artifact_repository(
            artifact_uri, tracking_uri=tracking_uri, registry_uri=tracking_uri
        )
        folders, files, total = [""], 0, 0
        while folders:
            for entry in repository.list_artifacts(folders.pop()):
                if entry.is_dir:
                    folders.append(entry.path)
                    continue
                files += 1
                total += entry.file_size or 0
                if files > MAX_MODEL_FILES or total > max_bytes:
                    raise MlflowSourceError(
                        f"the MLflow model holds more than {MAX_MODEL_FILES} files or "
                        f"{max_bytes:,} bytes; it is not downloaded"
                    )
    except MlflowSourceError:
        raise
    except Exception as exc:
        raise _mlflow_error(exc, what=artifact_uri, tracking_uri=tracking_uri) from exc
    return total


def _flavours(model_dir: Path) -> dict[str, Any]:
    from mlflow.models import Model

    if not (model_dir / "MLmodel").is_file():
        raise MlflowSourceError("the MLflow artifact is not a model: it has no MLmodel file")
    try:
        return dict(Model.load(str(model_dir)).flavors)
    except Exception as exc:
        raise MlflowSourceError(f"the MLmodel file could not be read: {_first_line(exc)}") from exc


def _onnx_from_sklearn(model_dir: Path, conf: dict[str, Any], *, width: int, out: Path) -> None:
    """Load a skops-saved scikit-learn model and convert it to ONNX with a probability output."""
    serialization = conf.get("serialization_format", "")
    if serialization != "skops":
        # pickle and cloudpickle run whatever code the file holds when it is loaded.
        raise MlflowSourceError(
            f"the scikit-learn model is saved as {serialization or 'an unknown format'}; "
            "only skops (MLflow's default, serialization_format='skops') is loaded, since "
            "unpickling runs code from the file"
        )
    import mlflow.sklearn
    from skl2onnx import to_onnx
    from sklearn.pipeline import Pipeline

    try:
        model = mlflow.sklearn.load_model(str(model_dir))
    except Exception as exc:
        raise MlflowSourceError(
            f"the scikit-learn model could not be loaded: {_first_line(exc)}"
        ) from exc
    final = model.steps[-1][1] if isinstance(model, Pipeline) else model
    if not hasattr(final, "predict_proba"):
        raise MlflowSourceError(
            f"the scikit-learn model ({type(final).__name__}) gives no class probabilities"
        )
    try:
        # A probability tensor instead of ZipMap's list of dicts, as the scorer reads it.
        onnx_model = to_onnx(
            model,
            np.zeros((1, width), dtype=np.float32),
            options={type(final): {"zipmap": False}},
            target_opset=ONNX_TARGET_OPSET,
        )
    except Exception as exc:
        raise MlflowSourceError(
            f"skl2onnx could not convert the {type(model).__name__} model: {_first_line(exc)}"
        ) from exc
    out.write_bytes(onnx_model.SerializeToString())


def _onnx_file(model_dir: Path, *, width: int, work: Path) -> tuple[Path, str]:
    """Return the model's ONNX file and its flavour, converting a scikit-learn model."""
    flavours = _flavours(model_dir)
    if "onnx" in flavours:
        data = str(flavours["onnx"].get("data") or "model.onnx")
        path = (model_dir / data).resolve()
        if not path.is_relative_to(model_dir.resolve()) or not path.is_file():
            raise MlflowSourceError(f"the ONNX flavour names a file it does not hold: {data}")
        return path, "onnx"
    if "sklearn" in flavours:
        out = work / "converted.onnx"
        _onnx_from_sklearn(model_dir, flavours["sklearn"], width=width, out=out)
        return out, "sklearn"
    named = ", ".join(sorted(name for name in flavours if name != "python_function")) or "none"
    raise MlflowSourceError(
        f"the model's flavour is neither onnx nor sklearn (it has: {named}); log it with "
        "mlflow.onnx.log_model or mlflow.sklearn.log_model"
    )


def _reference_find(
    client: MlflowClient,
    *,
    model_dir: Path,
    run_id: str,
    reference: str | None,
    tracking_uri: str,
    work: Path,
) -> Path | None:
    """Return the reference data file: named (a local file or a run artifact) or by convention."""
    if reference:
        local = Path(reference)
        if local.is_file():
            return local
        if not run_id:
            raise MlflowSourceError(f"{reference} is not a file and the model has no run")
        _size_check(
            artifact_uri=f"runs:/{run_id}/{reference.lstrip('/')}",
            tracking_uri=tracking_uri,
            max_bytes=int(settings.SHADOWLAB["MODEL_MAX_BYTES"]),
        )
        return _download(
            artifact_uri=f"runs:/{run_id}/{reference.lstrip('/')}",
            dst=work / "reference",
            tracking_uri=tracking_uri,
            what=f"artifact '{reference}' in run {run_id}",
        )
    for name in REFERENCE_NAMES:
        if (model_dir / name).is_file():
            return model_dir / name
    if not run_id:
        return None
    try:
        logged = {
            artifact.path: artifact.file_size or 0 for artifact in client.list_artifacts(run_id)
        }
    except Exception as exc:
        raise _mlflow_error(
            exc, what=f"artifacts of run {run_id}", tracking_uri=tracking_uri
        ) from exc
    for name in REFERENCE_NAMES:
        if name in logged:
            limit = int(settings.SHADOWLAB["MODEL_MAX_BYTES"])
            if logged[name] > limit:
                raise MlflowSourceError(
                    f"the run's {name} is {logged[name]:,} bytes; the limit is {limit:,}"
                )
            return _download(
                artifact_uri=f"runs:/{run_id}/{name}",
                dst=work / "reference",
                tracking_uri=tracking_uri,
                what=f"artifact '{name}' in run {run_id}",
            )
    return None


def model_version_register_from_mlflow(
    *,
    queue: Queue,
    uri: str,
    name: str | None = None,
    version: str | None = None,
    labels: list[str] | None = None,
    reference: str | None = None,
    tag_back: bool = False,
    created_by: User | None = None,
) -> ModelVersion:
    """Fetch a model from MLflow, convert it to ONNX if needed, and register it for the queue.

    name and version default to the registered model's; a runs:/ URI needs both. Anything
    wrong raises ModelRejected (MlflowSourceError for MLflow's part) and stores nothing.
    """
    ref = mlflow_uri_parse(uri)
    tracking_uri = tracking_uri_get()
    if tag_back and ref.run_id:
        raise MlflowSourceError(
            "--tag-back writes to a registered model version: use a models:/ URI"
        )
    client = mlflow_client(tracking_uri)
    source = _resolve(client, ref, tracking_uri=tracking_uri)
    name = (name or str(source["model_name"])).strip()
    version = (version or str(source["model_version"])).strip()
    if not name or not version:
        raise MlflowSourceError("a model from a runs:/ URI needs --name and --version")
    with tempfile.TemporaryDirectory(prefix="shadowlab-mlflow-") as tmp:
        work = Path(tmp)
        # The ONNX file and a reference array beside it, each within the upload limit.
        _size_check(
            artifact_uri=ref.uri,
            tracking_uri=tracking_uri,
            max_bytes=2 * int(settings.SHADOWLAB["MODEL_MAX_BYTES"]),
        )
        model_dir = _download(
            artifact_uri=ref.uri, dst=work / "model", tracking_uri=tracking_uri, what=ref.uri
        )
        onnx_path, flavour = _onnx_file(model_dir, width=queue.input_width, work=work)
        run_id = str(source["run_id"])
        reference_path = _reference_find(
            client,
            model_dir=model_dir,
            run_id=run_id,
            reference=reference,
            tracking_uri=tracking_uri,
            work=work,
        )
        matrix: np.ndarray | None = None
        if reference_path is not None:
            matrix = reference_load(reference_path, width=queue.input_width)
        record: dict[str, object] = {
            # The worker that writes tags back reads MLFLOW_TRACKING_URI itself: nothing secret
            # is stored here or shown on the model version's page.
            "tracking_uri": uri_without_credentials(tracking_uri),
            "uri": ref.uri,
            **source,
            "flavour": flavour,
            "reference": reference_path.name if reference_path is not None else "",
            "tag_back": tag_back,
        }
        return model_version_register(
            queue=queue,
            name=name,
            version=version,
            onnx_path=onnx_path,
            labels=labels,
            reference=matrix,
            mlflow_source=record,
            created_by=created_by,
        )
