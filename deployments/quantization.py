"""Make an INT8 copy of an FP32 ONNX model with ONNX Runtime's quantization tools (no Django).

Static QDQ quantization calibrated on reference rows when there are any (signed 8-bit weights
and activations, the fastest and most faithful choice measured on this kind of CPU), dynamic
quantization of the weights otherwise.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_ROWS = 1000
CALIBRATION_BATCH = 100
QUANTIZED_OPS = ["MatMul", "Gemm", "Add", "Relu", "Conv"]
# What quantize_model reports as it goes: each step once, in this order.
STEPS = ("load", "calibrate", "quantize", "check parity", "save")

Progress = Callable[[str, str], None]  # (step, what it is doing)


def _silent(step: str, detail: str) -> None:
    """Report nothing."""


@dataclass(frozen=True)
class QuantizationResult:
    method: str  # "static" or "dynamic"
    calibration_rows: int


class _ReferenceReader:
    """Feeds calibration batches to quantize_static."""

    def __init__(self, input_name: str, rows: np.ndarray, progress: Progress) -> None:
        self._batches = iter(
            [
                {input_name: rows[start : start + CALIBRATION_BATCH]}
                for start in range(0, len(rows), CALIBRATION_BATCH)
            ]
        )
        self._progress = progress
        self._done = False

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        if batch is None and not self._done:
            # quantize_static has seen every calibration batch: what follows is quantizing.
            self._done = True
            self._progress("quantize", "static QDQ, signed 8-bit weights and activations")
        return batch

    def rewind(self) -> None:  # quantize_static may ask; one pass is enough here
        pass


def model_quantize(
    fp32_path: Path,
    int8_path: Path,
    *,
    input_name: str,
    reference: np.ndarray | None,
    progress: Progress = _silent,
) -> QuantizationResult:
    """Write an INT8 model to int8_path and say how it was made, reporting each step."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="shadowlab-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Symbolic shape inference needs sympy, which is not a dependency; ONNX shape
        # inference is enough for these graphs.
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        if reference is not None and len(reference):
            rows = np.ascontiguousarray(reference[:CALIBRATION_ROWS], dtype=np.float32)
            batches = -(-len(rows) // CALIBRATION_BATCH)
            progress("calibrate", f"{len(rows):,} reference rows in {batches} batches (MinMax)")
            quantize_static(
                str(prepared),
                str(int8_path),
                _ReferenceReader(input_name, rows, progress),
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                # Leave Softmax in float: quantized probabilities move in steps of 1/255 and
                # their rows no longer sum to 1.
                op_types_to_quantize=QUANTIZED_OPS,
            )
            return QuantizationResult(method="static", calibration_rows=len(rows))
        progress("calibrate", "skipped: no reference rows, so dynamic quantization")
        progress("quantize", "dynamic, signed 8-bit weights")
        quantize_dynamic(
            str(prepared),
            str(int8_path),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=QUANTIZED_OPS,
        )
        return QuantizationResult(method="dynamic", calibration_rows=0)
