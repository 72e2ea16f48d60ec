"""The model registry: validate and store ONNX model versions, make INT8 variants."""

from __future__ import annotations

import io
import logging
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.core.files.base import ContentFile
from django.db import transaction

from deployments.audit import audit_record
from deployments.model_files import model_file_local, stored_file_read
from deployments.models import ModelVersion
from deployments.onnx_checks import ModelRejected, ModelSignature, model_check, smoke_rows
from deployments.parity import ParityReport, agreement_measure, latency_measure
from deployments.quantization import Progress, model_quantize
from deployments.runtime import ModelRunner, file_sha256
from inspections.models import Item, Queue

logger = logging.getLogger(__name__)

MAX_REFERENCE_ROWS = 200_000


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def reference_load(path: Path, *, width: int) -> np.ndarray:
    """Read a reference feature matrix from .npy or .csv, or raise ModelRejected."""
    max_bytes = settings.SHADOWLAB["MODEL_MAX_BYTES"]
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelRejected(f"the reference file is {size:,} bytes; the limit is {max_bytes:,}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            matrix = np.load(path, allow_pickle=False)
            if not isinstance(matrix, np.ndarray):  # an .npz archive under an .npy name
                matrix.close()
                raise ModelRejected("the .npy reference file holds an archive, not one array")
        elif suffix == ".csv":
            text = path.read_text()
            first = text.split("\n", 1)[0]
            # A header is a first line with a field that is not a number; "nan" and "inf"
            # are numbers here, so that a first data row holding them is checked, not skipped.
            header = any(field.strip() and not _is_number(field) for field in first.split(","))
            matrix = np.loadtxt(
                io.StringIO(text), delimiter=",", skiprows=1 if header else 0, ndmin=2
            )
        else:
            raise ModelRejected("reference data must be a .npy or .csv file")
    except ModelRejected:
        raise
    except Exception as exc:
        raise ModelRejected(f"the reference data could not be read: {exc}") from exc
    if matrix.ndim != 2 or matrix.shape[1] != width:
        raise ModelRejected(
            f"reference data must be a matrix with {width} columns, got shape {list(matrix.shape)}"
        )
    if matrix.dtype.kind not in "iuf":  # complex would lose its imaginary part silently
        raise ModelRejected("reference data must be numeric")
    if not len(matrix):
        raise ModelRejected("reference data has no rows")
    if len(matrix) > MAX_REFERENCE_ROWS:
        raise ModelRejected(
            f"reference data has {len(matrix):,} rows; at most {MAX_REFERENCE_ROWS:,}"
        )
    matrix = matrix.astype(np.float32)
    if not np.all(np.isfinite(matrix)):
        raise ModelRejected("reference data contains NaN or infinite values")
    return matrix


def _reference_profile_enqueue(model_version_id: int) -> None:
    """Queue the build of a new version's reference profile for the worker."""
    # Imported here: analytics builds on deployments, not the other way round.
    from analytics.tasks import reference_profile_build

    try:
        reference_profile_build.delay(model_version_id)
    except Exception:
        # Broker down: the first scoring batch or rollup on the worker builds it instead.
        logger.warning("reference profile of model version %d not queued", model_version_id)


def model_version_register(
    *,
    queue: Queue,
    name: str,
    version: str,
    onnx_path: Path,
    labels: list[str] | None = None,
    reference: np.ndarray | None = None,
    variant: str = ModelVersion.Variant.FP32,
    parent: ModelVersion | None = None,
    notes: dict[str, object] | None = None,
    mlflow_source: dict[str, object] | None = None,
    created_by: User | None = None,
) -> ModelVersion:
    """Validate an ONNX file against the queue and store it as a new model version.

    Anything wrong raises ModelRejected and stores nothing. mlflow_source records where a
    model taken from an MLflow registry came from (see deployments.mlflow_source).
    """
    name, version = name.strip(), version.strip()
    labels = [str(label) for label in (labels or queue.labels)]
    signature = _registration_check(
        queue=queue,
        name=name,
        version=version,
        onnx_path=onnx_path,
        labels=labels,
        reference=reference,
    )
    sha256 = file_sha256(onnx_path)
    model_version = ModelVersion(
        queue=queue,
        name=name,
        version=version,
        sha256=sha256,
        size_bytes=onnx_path.stat().st_size,
        labels=labels,
        input_width=queue.input_width,
        input_name=signature.input_name,
        probability_output=signature.probability_output,
        variant=variant,
        parent=parent,
        reference_rows=0 if reference is None else len(reference),
        notes={"opset": signature.opset, **(notes or {})},
        mlflow_source=mlflow_source or {},
        created_by=created_by if created_by is not None and created_by.pk else None,
    )
    _model_version_store(model_version=model_version, onnx_path=onnx_path, reference=reference)
    return model_version


def _registration_check(
    *,
    queue: Queue,
    name: str,
    version: str,
    onnx_path: Path,
    labels: list[str],
    reference: np.ndarray | None,
) -> ModelSignature:
    """Return the model's signature once it passes every check, or raise ModelRejected."""
    if not name or not version:
        raise ModelRejected("a model needs a name and a version")
    if ":" in name:
        raise ModelRejected("the model name may not contain ':'")
    if sorted(labels) != sorted(queue.labels) or len(set(labels)) != len(labels):
        raise ModelRejected(
            f"the labels {labels} must be the queue's labels {queue.labels}, in the model's order"
        )
    if ModelVersion.objects.filter(name=name, version=version).exists():
        raise ModelRejected(f"model {name}:{version} is already registered")
    if reference is not None and (reference.ndim != 2 or reference.shape[1] != queue.input_width):
        raise ModelRejected(f"reference data must have {queue.input_width} columns")
    # Parsing and running the file happen in a child process with limits, never here.
    return model_check(
        onnx_path,
        max_bytes=settings.SHADOWLAB["MODEL_MAX_BYTES"],
        input_width=queue.input_width,
        labels=labels,
        rows=smoke_rows(reference, queue.input_width),
    )


def _model_version_store(
    *, model_version: ModelVersion, onnx_path: Path, reference: np.ndarray | None
) -> None:
    """Store the files, then the row and its audit entry; on failure leave no file behind."""
    stem = f"{model_version.name}-{model_version.version}-{model_version.sha256[:12]}"
    stored: list[str] = []
    try:
        with onnx_path.open("rb") as handle:
            model_version.onnx_file.save(f"{stem}.onnx", File(handle), save=False)
        stored.append(model_version.onnx_file.name)
        if reference is not None:
            buffer = io.BytesIO()
            np.save(buffer, reference.astype(np.float32), allow_pickle=False)
            model_version.reference_file.save(
                f"{stem}.npy", ContentFile(buffer.getvalue()), save=False
            )
            stored.append(model_version.reference_file.name)
        with transaction.atomic():
            model_version.save()
            audit_record(
                actor=model_version.created_by,
                action="model_version.register",
                subject=model_version,
                after={
                    "queue": model_version.queue.slug,
                    "variant": model_version.variant,
                    "sha256": model_version.sha256,
                    "labels": model_version.labels,
                    "parent": model_version.parent.key if model_version.parent else None,
                    "reference_rows": model_version.reference_rows,
                    **(
                        {"mlflow_source": model_version.mlflow_source}
                        if model_version.mlflow_source
                        else {}
                    ),
                },
            )
            transaction.on_commit(partial(_reference_profile_enqueue, model_version.pk))
    except Exception:
        storage = model_version.onnx_file.storage
        for stored_name in stored:
            storage.delete(stored_name)
        raise


def reference_data(model_version: ModelVersion) -> np.ndarray | None:
    """Return the model version's reference feature matrix, if it has one."""
    if not model_version.reference_file:
        return None
    return np.load(io.BytesIO(stored_file_read(model_version.reference_file)), allow_pickle=False)


def _recent_rows(queue: Queue, width: int, limit: int = 5000) -> np.ndarray | None:
    """Return the features of the queue's latest items, if any."""
    recent = list(
        Item.objects.filter(queue=queue).order_by("-id").values_list("features", flat=True)[:limit]
    )
    rows = [row for row in recent if isinstance(row, list) and len(row) == width]
    return np.asarray(rows, dtype=np.float32) if rows else None


def model_version_quantize(
    *,
    model_version: ModelVersion,
    version: str | None = None,
    force: bool = False,
    created_by: User | None = None,
    progress: Progress | None = None,
) -> ModelVersion:
    """Make the INT8 variant of an FP32 version, compare it with its parent, and register it.

    The parity report (agreement on reference data and recent items, probability
    differences, flips per class, latency at batch 1, 64 and 512, file sizes) is stored on
    the new version. A variant below SHADOWLAB["INT8_MIN_AGREEMENT"] is refused unless forced.
    """
    if model_version.variant != ModelVersion.Variant.FP32:
        raise ModelRejected(f"{model_version.key} is already {model_version.variant}")
    report_step = progress or (lambda step, detail: None)
    reference = reference_data(model_version)
    fp32_path = model_file_local(model_version.onnx_file, sha256=model_version.sha256)
    rows = "no reference data" if reference is None else f"{len(reference):,} reference rows"
    report_step("load", f"{model_version.key} ({model_version.size_bytes:,} bytes) and {rows}")
    with tempfile.TemporaryDirectory(prefix="shadowlab-int8-") as tmp:
        int8_path = Path(tmp) / "int8.onnx"
        try:
            method = model_quantize(
                fp32_path,
                int8_path,
                input_name=model_version.input_name,
                reference=reference,
                progress=report_step,
            )
        except Exception as exc:
            raise ModelRejected(f"quantization failed: {type(exc).__name__}: {exc}") from exc
        report_step("check parity", "top-1 agreement and latency of INT8 against FP32")
        report = _parity(model_version, fp32_path, int8_path, reference)
        if not report.passes and not force:
            raise ModelRejected(
                f"the INT8 model agrees with its parent on only {report.worst_agreement:.2%} of "
                f"top-1 decisions (at least {report.minimum_agreement:.1%} required; "
                "use --force to register it anyway)"
            )
        new_version = version or f"{model_version.version}-int8"
        agreement = report.worst_agreement
        report_step(
            "save",
            f"registering {model_version.name}:{new_version} (top-1 agreement "
            + ("not measured)" if agreement is None else f"{agreement:.2%})"),
        )
        return model_version_register(
            queue=model_version.queue,
            name=model_version.name,
            version=new_version,
            onnx_path=int8_path,
            labels=model_version.labels,
            reference=reference,
            variant=ModelVersion.Variant.INT8,
            parent=model_version,
            notes={
                "quantization": method.method,
                "calibration_rows": method.calibration_rows,
                "top1_agreement_with_parent": report.worst_agreement,
                "forced": force and not report.passes,
                "parity": report.as_dict(),
            },
            created_by=created_by,
        )


def _parity(
    model_version: ModelVersion, fp32_path: Path, int8_path: Path, reference: np.ndarray | None
) -> ParityReport:
    fp32, int8 = (
        ModelRunner(
            path,
            input_name=model_version.input_name,
            probability_output=model_version.probability_output,
            input_width=model_version.input_width,
        )
        for path in (fp32_path, int8_path)
    )
    agreements = []
    notes = []
    if reference is not None:
        agreements.append(
            agreement_measure(fp32, int8, reference, model_version.labels, "reference data")
        )
    else:
        notes.append("no reference data: agreement measured on recent items only")
    recent = _recent_rows(model_version.queue, model_version.input_width)
    if recent is not None:
        agreements.append(
            agreement_measure(fp32, int8, recent, model_version.labels, "recent items")
        )
    timing_rows = reference if reference is not None else recent
    if timing_rows is None:
        timing_rows = np.random.default_rng(0).normal(size=(64, model_version.input_width))
        notes.append("no reference data or items: latency measured on random rows")
    return ParityReport(
        agreements=agreements,
        latency=latency_measure(fp32, int8, timing_rows),
        fp32_bytes=fp32_path.stat().st_size,
        int8_bytes=int8_path.stat().st_size,
        minimum_agreement=settings.SHADOWLAB["INT8_MIN_AGREEMENT"],
        notes=notes,
    )
