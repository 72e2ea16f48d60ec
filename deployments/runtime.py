"""ONNX Runtime sessions for registered models (no Django import).

One session per model file per process, created on first use and warmed, so a worker pays
the load cost once per model version.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class BatchResult:
    label_indices: np.ndarray  # (n,) int: column of the most probable label
    probabilities: np.ndarray  # (n, classes) float32
    seconds: float  # wall time of the inference call


class ModelRunner:
    """A loaded model that maps a float32 feature matrix to class probabilities."""

    def __init__(
        self,
        path: Path,
        *,
        input_name: str,
        probability_output: str,
        input_width: int,
        intra_op_threads: int = 1,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = set(ort.get_available_providers())
        chosen = [p for p in (providers or ["CPUExecutionProvider"]) if p in available]
        self.session = ort.InferenceSession(
            str(path), options, providers=chosen or ["CPUExecutionProvider"]
        )
        self.input_name = input_name
        self.probability_output = probability_output
        self.input_width = input_width
        self.providers = self.session.get_providers()

    def predict(self, features: np.ndarray) -> BatchResult:
        """Score a batch; the caller has already checked shape and finiteness."""
        batch = np.ascontiguousarray(features, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != self.input_width:
            raise ValueError(
                f"expected a [n, {self.input_width}] feature matrix, got {list(batch.shape)}"
            )
        started = time.perf_counter()
        (probabilities,) = self.session.run([self.probability_output], {self.input_name: batch})
        seconds = time.perf_counter() - started
        probabilities = np.asarray(probabilities, dtype=np.float32)
        return BatchResult(probabilities.argmax(axis=1), probabilities, seconds)

    def warm(self, rows: np.ndarray | None = None) -> None:
        """Run once so that the first real batch does not pay for lazy initialisation."""
        if rows is None or not len(rows):
            rows = np.zeros((1, self.input_width), dtype=np.float32)
        self.predict(rows[:64])


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_runners: dict[str, ModelRunner] = {}
_lock = threading.Lock()


def runner_get(
    path: Path | Callable[[], Path],
    *,
    sha256: str,
    input_name: str,
    probability_output: str,
    input_width: int,
    intra_op_threads: int = 1,
    providers: list[str] | None = None,
    warm_rows: Callable[[], np.ndarray | None] | None = None,
) -> ModelRunner:
    """Return this process's session for a model file, loading, checking and warming it once.

    `path` may be a function giving the path, called only when the session is not loaded yet
    (a file kept in a bucket is copied to this machine then, not on every call).
    """
    runner = _runners.get(sha256)
    if runner is not None:
        return runner
    with _lock:
        runner = _runners.get(sha256)
        if runner is None:
            if callable(path):
                path = path()
            actual = file_sha256(path)
            if actual != sha256:
                raise ValueError(
                    f"the model file changed since registration (sha256 {actual[:12]}…, "
                    f"registered {sha256[:12]}…)"
                )
            runner = ModelRunner(
                path,
                input_name=input_name,
                probability_output=probability_output,
                input_width=input_width,
                intra_op_threads=intra_op_threads,
                providers=providers,
            )
            runner.warm(warm_rows() if warm_rows is not None else None)
            _runners[sha256] = runner
    return runner


def runners_clear() -> None:
    with _lock:
        _runners.clear()
