"""Child process for the registry's smoke inference: run a model on rows, print a JSON verdict.

Usage: python -m deployments.onnx_probe MODEL ROWS.npy INPUT_NAME OUTPUT_NAME N_CLASSES
"""

from __future__ import annotations

import json
import resource
import sys

import numpy as np

from deployments.onnx_checks import PROBE_MEMORY_BYTES, probabilities_check


def main(argv: list[str]) -> int:
    model_path, rows_path, input_name, output_name, n_classes = argv
    resource.setrlimit(resource.RLIMIT_AS, (PROBE_MEMORY_BYTES, PROBE_MEMORY_BYTES))
    rows = np.load(rows_path, allow_pickle=False)
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
        outputs = session.run([output_name], {input_name: rows})
    except Exception as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(json.dumps({"ok": False, "error": f"ONNX Runtime: {message[:300]}"}))
        return 0
    problem = probabilities_check(np.asarray(outputs[0]), rows=len(rows), n_classes=int(n_classes))
    print(json.dumps({"ok": problem is None, "error": problem}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
