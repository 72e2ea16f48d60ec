"""Decide whether an ONNX file may be registered (no Django import).

Static checks run in this process on the parsed protobuf; the one check that executes the
graph (a smoke inference) runs in a child process with a time and memory limit, so that a
hostile or broken model can crash or hang only that child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# How long the smoke inference may take and how much memory its process may map.
PROBE_TIMEOUT_SECONDS = 60
PROBE_MEMORY_BYTES = 4 * 1024**3
SMOKE_ROWS = 64
PROBABILITY_TOLERANCE = 1e-3


class ModelRejected(ValueError):
    """The file cannot be registered; the message says why in words a user can act on."""


@dataclass(frozen=True)
class ModelSignature:
    input_name: str
    input_width: int
    probability_output: str
    n_classes: int
    opset: int


def _tensor_shape(value_info: object) -> list[int | str | None]:
    dims = value_info.type.tensor_type.shape.dim  # type: ignore[attr-defined]
    shape: list[int | str | None] = []
    for dim in dims:
        if dim.HasField("dim_value"):
            shape.append(int(dim.dim_value))
        elif dim.HasField("dim_param"):
            shape.append(dim.dim_param)
        else:
            shape.append(None)
    return shape


def model_signature_read(
    path: Path, *, max_bytes: int, input_width: int, labels: list[str]
) -> ModelSignature:
    """Return the model's input and probability output, or raise ModelRejected."""
    import onnx
    from onnx import TensorProto, external_data_helper

    size = path.stat().st_size
    if size > max_bytes:
        raise ModelRejected(f"the ONNX file is {size:,} bytes; the limit is {max_bytes:,} bytes")
    if size == 0:
        raise ModelRejected("the ONNX file is empty")
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelRejected(
            f"the file is not a readable ONNX model ({type(exc).__name__})"
        ) from exc
    if not model.graph.node:
        raise ModelRejected("the file is not a readable ONNX model (its graph has no nodes)")
    external = [
        tensor.name or "(unnamed)"
        for tensor in external_data_helper._get_all_tensors(model)
        if external_data_helper.uses_external_data(tensor)
    ]
    if external:
        raise ModelRejected(
            "the model keeps tensors in external data files, which are not accepted: "
            + ", ".join(external[:5])
        )
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelRejected(f"the ONNX checker refused the model: {message[:300]}") from exc

    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise ModelRejected(f"the model must have exactly one input, it has {len(inputs)}")
    model_input = inputs[0]
    if model_input.type.tensor_type.elem_type != TensorProto.FLOAT:
        raise ModelRejected(f"the input '{model_input.name}' must be a float32 tensor")
    shape = _tensor_shape(model_input)
    if len(shape) != 2:
        raise ModelRejected(
            f"the input '{model_input.name}' must be a 2-D [batch, features] tensor, "
            f"it has shape {shape}"
        )
    if isinstance(shape[1], int) and shape[1] != input_width:
        raise ModelRejected(
            f"the model expects {shape[1]} features per item but the queue has {input_width}"
        )
    if isinstance(shape[0], int) and shape[0] != 1:
        raise ModelRejected(f"the input batch dimension is fixed at {shape[0]}; it must be dynamic")

    candidates = []
    for output in model.graph.output:
        if output.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        out_shape = _tensor_shape(output)
        if len(out_shape) == 2:
            candidates.append((output.name, out_shape))
    if not candidates:
        raise ModelRejected(
            "the model has no float [batch, classes] output of class probabilities "
            "(export scikit-learn classifiers with zipmap disabled)"
        )
    named = [c for c in candidates if "prob" in c[0].lower()]
    name, out_shape = (named or candidates)[0]
    if isinstance(out_shape[1], int) and out_shape[1] != len(labels):
        raise ModelRejected(
            f"the model outputs probabilities over {out_shape[1]} classes "
            f"but {len(labels)} labels were declared"
        )
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return ModelSignature(
        input_name=model_input.name,
        input_width=input_width,
        probability_output=name,
        n_classes=len(labels),
        opset=opset,
    )


def smoke_rows(reference: np.ndarray | None, width: int) -> np.ndarray:
    """Return the rows a smoke inference runs on: reference rows, else seeded random ones."""
    if reference is not None and len(reference):
        return np.ascontiguousarray(reference[:SMOKE_ROWS], dtype=np.float32)
    return np.random.default_rng(0).normal(size=(8, width)).astype(np.float32)


def smoke_inference(path: Path, signature: ModelSignature, rows: np.ndarray) -> None:
    """Run the model on a few rows in a child process; raise ModelRejected if anything fails."""
    with tempfile.TemporaryDirectory(prefix="shadowlab-probe-") as tmp:
        rows_path = Path(tmp) / "rows.npy"
        np.save(rows_path, rows)
        command = [
            sys.executable,
            "-m",
            "deployments.onnx_probe",
            str(path),
            str(rows_path),
            signature.input_name,
            signature.probability_output,
            str(signature.n_classes),
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        try:
            completed = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_SECONDS,
                env=env,
                cwd=str(Path(__file__).resolve().parent.parent),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ModelRejected(
                f"the smoke inference did not finish within {PROBE_TIMEOUT_SECONDS} s"
            ) from exc
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        detail = (completed.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise ModelRejected(
            f"the smoke inference crashed (exit code {completed.returncode}): {detail}"
        )
    verdict = json.loads(lines[-1])
    if not verdict.get("ok"):
        raise ModelRejected(f"the smoke inference failed: {verdict.get('error', 'unknown error')}")


def probabilities_check(probabilities: np.ndarray, *, rows: int, n_classes: int) -> str | None:
    """Return why these outputs are not class probabilities, or None if they are."""
    if probabilities.shape != (rows, n_classes):
        return (
            f"the probability output has shape {list(probabilities.shape)}, "
            f"expected [{rows}, {n_classes}]"
        )
    if not np.all(np.isfinite(probabilities)):
        return "the probability output contains NaN or infinite values"
    if (
        probabilities.min() < -PROBABILITY_TOLERANCE
        or probabilities.max() > 1 + PROBABILITY_TOLERANCE
    ):
        return "the probability output has values outside [0, 1]"
    sums = probabilities.sum(axis=1)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > PROBABILITY_TOLERANCE:
        return f"the probability rows do not sum to 1 (off by up to {worst:.3g})"
    return None
