"""FP32 against INT8 (static QDQ) ONNX Runtime rows/s per batch size, with top-1 agreement.

Trains the demo digits MLP, exports it to ONNX, quantizes it the way `quantize_model` does
and times both on one intra-op thread (the worker configuration).

    .venv/bin/python bench/int8.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deployments.quantization import model_quantize
from deployments.runtime import ModelRunner
from shadowlab import digits

BATCHES = (1, 8, 64, 256, 512, 1024)


def rows_per_second(
    runner: ModelRunner, rows: np.ndarray, batch: int, seconds: float = 1.0
) -> float:
    picked = np.ascontiguousarray(np.resize(rows, (batch, rows.shape[1])), dtype=np.float32)
    for _ in range(20):
        runner.predict(picked)
    rates = []
    for _ in range(5):  # median of five runs
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 5:
            runner.predict(picked)
            done += batch
        rates.append(done / (time.perf_counter() - started))
    return float(np.median(rates))


def main() -> None:
    split = digits.digits_split()
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path, int8_path = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        accuracy = digits.digits_model_export(split, fp32_path)
        method = model_quantize(fp32_path, int8_path, input_name="X", reference=split.train_x)
        fp32, int8 = (
            ModelRunner(path, input_name="X", probability_output="probabilities", input_width=64)
            for path in (fp32_path, int8_path)
        )
        everything = np.vstack([split.train_x, split.holdout_x])
        a, b = fp32.predict(everything), int8.predict(everything)
        agreement = float(np.mean(a.label_indices == b.label_indices))
        holdout_a = fp32.predict(split.holdout_x).label_indices
        holdout_b = int8.predict(split.holdout_x).label_indices
        print("INT8 against FP32, digits MLP 64-256-128-10, one intra-op thread")
        print(f"quantization: {method.method} QDQ, {method.calibration_rows} calibration rows")
        print(
            f"sizes: {fp32_path.stat().st_size:,} -> {int8_path.stat().st_size:,} bytes; "
            f"held-out accuracy FP32 {np.mean(holdout_a == split.holdout_y):.4f} "
            f"(training script {accuracy:.4f}), INT8 {np.mean(holdout_b == split.holdout_y):.4f}"
        )
        print(
            f"top-1 agreement on all {len(everything):,} digits: {agreement:.2%}; "
            f"max |p_fp32 - p_int8| {np.max(np.abs(a.probabilities - b.probabilities)):.4f}"
        )
        print()
        print(f"{'batch':>6}{'FP32 rows/s':>14}{'INT8 rows/s':>14}{'INT8/FP32':>11}")
        for batch in BATCHES:
            r32 = rows_per_second(fp32, everything, batch)
            r8 = rows_per_second(int8, everything, batch)
            print(f"{batch:>6}{r32:>14,.0f}{r8:>14,.0f}{r8 / r32:>10.2f}x")


if __name__ == "__main__":
    main()
