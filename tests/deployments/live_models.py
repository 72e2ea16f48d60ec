"""Real ONNX models that misbehave on the live path, stored as model versions of a queue."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
from django.core.files.base import ContentFile
from onnx import TensorProto, helper, numpy_helper

from deployments.models import ModelVersion
from inspections.models import Queue

WIDTH, CLASSES, HIDDEN = 64, 10, 256


def _model(nodes, initializers, *, subgraph_opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "live-test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", WIDTH])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", CLASSES])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", subgraph_opset)])
    onnx.checker.check_model(model)
    return model


def slow_classifier(rounds: int = 3000) -> onnx.ModelProto:
    """A classifier that multiplies a hidden state `rounds` times in a Loop before answering.

    It answers correctly shaped probabilities, only late: on one core a row takes tens of
    milliseconds per thousand rounds.
    """
    rng = np.random.default_rng(0)
    w_in = rng.normal(scale=0.1, size=(WIDTH, HIDDEN)).astype(np.float32)
    w_loop = rng.normal(scale=0.05, size=(HIDDEN, HIDDEN)).astype(np.float32)
    w_out = rng.normal(scale=0.1, size=(HIDDEN, CLASSES)).astype(np.float32)
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["state_in", "w_loop"], ["product"]),
            helper.make_node("Tanh", ["product"], ["state_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "round",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_in", TensorProto.FLOAT, ["n", HIDDEN]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("state_out", TensorProto.FLOAT, ["n", HIDDEN]),
        ],
    )
    nodes = [
        helper.make_node("MatMul", ["x", "w_in"], ["state0"]),
        helper.make_node("Loop", ["rounds", "keep_going", "state0"], ["state"], body=body),
        helper.make_node("MatMul", ["state", "w_out"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    initializers = [
        numpy_helper.from_array(w_in, "w_in"),
        numpy_helper.from_array(w_loop, "w_loop"),
        numpy_helper.from_array(w_out, "w_out"),
        numpy_helper.from_array(np.array(rounds, dtype=np.int64), "rounds"),
        numpy_helper.from_array(np.array(True), "keep_going"),
    ]
    return _model(nodes, initializers)


def failing_classifier() -> onnx.ModelProto:
    """A classifier that loads and warms up on zeros but fails on any real digit.

    It looks its logits up in a one-row table at the row's largest feature: zero is in
    range, a digit's ink (up to 16) is not, and ONNX Runtime raises at run time.
    """
    table = np.zeros((1, CLASSES), dtype=np.float32)
    nodes = [
        helper.make_node("ReduceMax", ["x"], ["peak"], axes=[1], keepdims=0),
        helper.make_node("Cast", ["peak"], ["index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "index"], ["logits"], axis=0),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    return _model(nodes, [numpy_helper.from_array(table, "table")])


def version_with_model(queue: Queue, version: str, model: onnx.ModelProto) -> ModelVersion:
    """Store the model's file under MEDIA_ROOT as a model version, as registration would."""
    data = model.SerializeToString()
    model_version = ModelVersion(
        queue=queue,
        name="digits-live-test",
        version=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        labels=list(queue.labels),
        input_width=WIDTH,
        input_name="x",
        probability_output="probabilities",
    )
    model_version.onnx_file.save(f"live-test-{version}.onnx", ContentFile(data), save=False)
    model_version.save()
    return model_version
