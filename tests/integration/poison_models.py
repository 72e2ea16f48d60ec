"""Digits models that pass registration and then fail on live items (no Django import).

Registration runs a model on its reference rows, where the first pixel is always blank (0).
These models answer like the model they are made from there, and fail on any item whose first
pixel is not blank:

- `crashing_model_write`: ONNX Runtime's 64-bit integer division traps on INT64_MIN / -1
  (it checks for a zero divisor, not for this overflow), so on x86-64 the process running the
  model dies of SIGFPE: what a native crash in the runtime looks like to a worker.
- `failing_model_write`: a tensor of first-pixel x 10^12 floats that ONNX Runtime cannot
  allocate, so every run raises.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

POISON_PIXEL = 1.0  # a first pixel of 1 (never seen in the reference data) sets them off


def _graft(source: Path, target: Path, nodes: list, initializers: list, poison: str) -> None:
    """Write source's model with `poison` (an [n, 1] float of zeros) added to its probabilities."""
    model = onnx.load(source)
    graph = model.graph
    for node in graph.node:
        node.output[:] = ["probabilities_clean" if o == "probabilities" else o for o in node.output]
    for node in graph.node:
        node.input[:] = ["probabilities_clean" if i == "probabilities" else i for i in node.input]
    first_pixel = [
        helper.make_node("Slice", ["X", "poison_start", "poison_end", "poison_axis"], ["pixel0"]),
    ]
    tail = [helper.make_node("Add", ["probabilities_clean", poison], ["probabilities"])]
    graph.node.extend(first_pixel + nodes + tail)
    graph.initializer.extend(
        [
            helper.make_tensor("poison_start", TensorProto.INT64, [1], [0]),
            helper.make_tensor("poison_end", TensorProto.INT64, [1], [1]),
            helper.make_tensor("poison_axis", TensorProto.INT64, [1], [1]),
            *initializers,
        ]
    )
    onnx.checker.check_model(model)
    target.write_bytes(model.SerializeToString())


def crashing_model_write(source: Path, target: Path) -> Path:
    """Write a model whose run kills its process (SIGFPE) on a non-blank first pixel."""
    nodes = [
        helper.make_node("Cast", ["pixel0"], ["pixel0_int"], to=TensorProto.INT64),
        # divisor = 1 - 2 * min(pixel, 1): 1 on a blank first pixel, -1 otherwise.
        helper.make_node("Min", ["pixel0_int", "one"], ["inked"]),
        helper.make_node("Mul", ["inked", "two"], ["inked_twice"]),
        helper.make_node("Sub", ["one", "inked_twice"], ["divisor"]),
        helper.make_node("Div", ["int64_min", "divisor"], ["quotient"]),
        helper.make_node("Cast", ["quotient"], ["quotient_float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["quotient_float", "zero"], ["poison"]),
    ]
    initializers = [
        helper.make_tensor("one", TensorProto.INT64, [], [1]),
        helper.make_tensor("two", TensorProto.INT64, [], [2]),
        helper.make_tensor("int64_min", TensorProto.INT64, [], [int(np.iinfo(np.int64).min)]),
        helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
    ]
    _graft(source, target, nodes, initializers, "poison")
    return target


def failing_model_write(source: Path, target: Path) -> Path:
    """Write a model whose every run on a non-blank first pixel raises in ONNX Runtime."""
    nodes = [
        helper.make_node("ReduceMax", ["pixel0"], ["pixel0_max"], keepdims=0),
        helper.make_node("Mul", ["pixel0_max", "huge"], ["size_float"]),
        helper.make_node("Add", ["size_float", "one_float"], ["size_at_least_one"]),
        helper.make_node("Cast", ["size_at_least_one"], ["size"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["size", "shape_1d"], ["shape"]),
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["filler"],
            value=helper.make_tensor("filler_value", TensorProto.FLOAT, [1], [0.0]),
        ),
        helper.make_node("ReduceSum", ["filler"], ["filler_sum"], keepdims=0),
        helper.make_node("Mul", ["pixel0", "filler_sum"], ["poison"]),
    ]
    initializers = [
        helper.make_tensor("huge", TensorProto.FLOAT, [], [1e12]),
        helper.make_tensor("one_float", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("shape_1d", TensorProto.INT64, [1], [1]),
    ]
    _graft(source, target, nodes, initializers, "poison")
    return target


_RUN = """
import sys, numpy as np, onnxruntime as ort
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
rows = np.zeros((2, 64), np.float32)
rows[:, 0] = float(sys.argv[2])
session.run(None, {"X": rows})
"""


def run_in_child(model: Path, first_pixel: float) -> int:
    """Run the model once in a child process on rows with this first pixel; its exit code."""
    return subprocess.run(
        [sys.executable, "-c", _RUN, str(model), str(first_pixel)],
        capture_output=True,
        timeout=60,
        check=False,
    ).returncode
