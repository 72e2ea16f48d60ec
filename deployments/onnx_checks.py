"""Decide whether an ONNX file may be registered (no Django import).

Nothing here parses or runs an uploaded file in the calling (web or worker) process: the
parent only looks at the file's size, and every other check, static (protobuf, checker,
operator domains, opsets, external data, signature) and the smoke inference, runs in a
child process (``deployments.onnx_probe``) with an address-space, a CPU-time and a
wall-time limit. A hostile or broken file can only crash, exhaust or stall that child,
which the parent reports as a refusal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Limits of the child that checks a model: wall time, CPU time and address space (which
# includes ONNX Runtime's own libraries and thread stacks, about 1 GiB before any model).
PROBE_TIMEOUT_SECONDS = 60
PROBE_CPU_SECONDS = 45
PROBE_MEMORY_BYTES = 4 * 1024**3
SMOKE_ROWS = 64
PROBABILITY_TOLERANCE = 1e-3
# Operator domains a model's nodes may use: ONNX's own, its ML operators (scikit-learn
# exports) and the contrib operators built into ONNX Runtime. Any other domain needs a
# custom-op library, which is code we would have to load. (Quantized files import many
# domains they never use; only the domains of nodes and local functions count.)
STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft")
# ONNX Runtime runs opsets from 7; ai.onnx.ml from 1.
MIN_OPSET = {"": 7, "ai.onnx.ml": 1}


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


def _graphs(graph: Any) -> Iterator[Any]:
    """Yield a graph and every subgraph of its nodes (If, Loop, Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graphs(subgraph)


def _tensors(graph: Any) -> Iterator[tuple[str, Any]]:
    """Yield (name, tensor) for every tensor of a graph: initializers, sparse, attributes."""
    for each in _graphs(graph):
        for tensor in each.initializer:
            yield tensor.name or "(unnamed)", tensor
        for sparse in each.sparse_initializer:
            yield sparse.values.name or "(sparse)", sparse.values
            yield sparse.indices.name or "(sparse indices)", sparse.indices
        for node in each.node:
            for attribute in node.attribute:
                label = f"{node.op_type}.{attribute.name}"
                if attribute.HasField("t"):
                    yield label, attribute.t
                for tensor in attribute.tensors:
                    yield label, tensor
                if attribute.HasField("sparse_tensor"):
                    yield label, attribute.sparse_tensor.values
                    yield label, attribute.sparse_tensor.indices
                for sparse in attribute.sparse_tensors:
                    yield label, sparse.values
                    yield label, sparse.indices


def _is_external(tensor: Any) -> bool:
    # Either flag counts: ONNX Runtime follows a "location" entry even without the other.
    from onnx import TensorProto

    return tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data) > 0


def _opsets_check(model: Any) -> None:
    """Refuse operators from custom domains and opsets ONNX Runtime cannot run."""
    import onnx

    highest = {
        "": onnx.defs.onnx_opset_version(),
        "ai.onnx.ml": max(
            schema.since_version
            for schema in onnx.defs.get_all_schemas_with_history()
            if schema.domain == "ai.onnx.ml"
        ),
    }
    used = {node.domain for graph in _graphs(model.graph) for node in graph.node}
    used |= {function.domain for function in model.functions}
    custom = sorted(domain for domain in used if domain not in STANDARD_DOMAINS)
    if custom:
        raise ModelRejected(
            f"the model uses operators from the custom domain {custom[0]!r}; only the standard "
            "ONNX operators and those built into ONNX Runtime are accepted"
        )
    for opset in model.opset_import:
        domain = "" if opset.domain == "ai.onnx" else opset.domain
        if domain not in highest:
            continue
        low, high = MIN_OPSET[domain], highest[domain]
        if not low <= opset.version <= high:
            name = domain or "ai.onnx"
            raise ModelRejected(
                f"the model imports opset {opset.version} of {name}; "
                f"opsets {low} to {high} are accepted"
            )


def model_signature_read(
    path: Path, *, max_bytes: int, input_width: int, labels: list[str]
) -> ModelSignature:
    """Return the model's input and probability output, or raise ModelRejected."""
    import onnx
    from onnx import TensorProto

    _size_check(path, max_bytes)
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelRejected(
            f"the file is not a readable ONNX model ({type(exc).__name__})"
        ) from exc
    if not model.graph.node:
        raise ModelRejected("the file is not a readable ONNX model (its graph has no nodes)")
    external = [name for name, tensor in _tensors(model.graph) if _is_external(tensor)]
    if external:
        raise ModelRejected(
            "the model keeps tensors in external data files, which are not accepted: "
            + ", ".join(external[:5])
        )
    _opsets_check(model)
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


def _size_check(path: Path, max_bytes: int) -> None:
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelRejected(f"the ONNX file is {size:,} bytes; the limit is {max_bytes:,} bytes")
    if size == 0:
        raise ModelRejected("the ONNX file is empty")


def _crash_reason(returncode: int, stderr: str) -> str:
    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"the model check used more than {PROBE_CPU_SECONDS} s of CPU and was stopped"
    if returncode < 0:
        return f"the model check crashed ({signal.Signals(-returncode).name})"
    detail = (stderr.strip().splitlines() or ["no output"])[-1][:300]
    return f"the model check crashed (exit code {returncode}): {detail}"


def model_check(
    path: Path, *, max_bytes: int, input_width: int, labels: list[str], rows: np.ndarray
) -> ModelSignature:
    """Check a model in a limited child process: static checks, then a smoke inference on rows.

    Return its signature, or raise ModelRejected saying why, whatever the file does to
    the child (a parser crash, memory exhaustion, an endless graph).
    """
    _size_check(path, max_bytes)
    with tempfile.TemporaryDirectory(prefix="shadowlab-probe-") as tmp:
        rows_path = Path(tmp) / "rows.npy"
        np.save(rows_path, np.ascontiguousarray(rows, dtype=np.float32))
        request = {
            "model": str(path),
            "rows": str(rows_path),
            "max_bytes": max_bytes,
            "input_width": input_width,
            "labels": labels,
            "memory_bytes": PROBE_MEMORY_BYTES,
            "cpu_seconds": PROBE_CPU_SECONDS,
        }
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        try:
            completed = subprocess.run(
                [sys.executable, "-m", "deployments.onnx_probe", json.dumps(request)],
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT_SECONDS,
                env=env,
                cwd=str(Path(__file__).resolve().parent.parent),
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ModelRejected(
                f"the model check did not finish within {PROBE_TIMEOUT_SECONDS} s"
            ) from exc
    lines = completed.stdout.strip().splitlines()
    try:
        verdict = json.loads(lines[-1]) if completed.returncode == 0 and lines else None
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict):
        raise ModelRejected(_crash_reason(completed.returncode, completed.stderr))
    if not verdict.get("ok"):
        raise ModelRejected(str(verdict.get("error") or "the model check failed"))
    return ModelSignature(**verdict["signature"])


def model_probe(request: dict[str, Any]) -> dict[str, Any]:
    """Run in the limited child: every check of the file, then the smoke inference."""
    try:
        signature = model_signature_read(
            Path(request["model"]),
            max_bytes=int(request["max_bytes"]),
            input_width=int(request["input_width"]),
            labels=[str(label) for label in request["labels"]],
        )
    except ModelRejected as exc:
        return {"ok": False, "error": str(exc)}
    rows = np.load(request["rows"], allow_pickle=False)
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            request["model"], options, providers=["CPUExecutionProvider"]
        )
        (outputs,) = session.run([signature.probability_output], {signature.input_name: rows})
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, MemoryError) or "failed to allocate memory" in message.lower():
            limit = int(request["memory_bytes"]) / 1024**3
            return {
                "ok": False,
                "error": "the smoke inference failed: the model asked for more memory than "
                f"the {limit:.3g} GiB a model check may use",
            }
        return {"ok": False, "error": f"the smoke inference failed: ONNX Runtime: {message[:300]}"}
    problem = probabilities_check(
        np.asarray(outputs), rows=len(rows), n_classes=signature.n_classes
    )
    if problem:
        return {"ok": False, "error": f"the smoke inference failed: {problem}"}
    return {"ok": True, "signature": asdict(signature)}


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
