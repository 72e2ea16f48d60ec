"""S5: a corpus of hostile ONNX files, built here with onnx's helpers: none is registered,
each is refused with a sentence saying why, and neither the web process (this one) nor
a worker is harmed, because every parse and run happens in a limited child process."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from onnx import TensorProto, helper, numpy_helper

from deployments import onnx_checks
from deployments.models import AuditEvent, ModelVersion
from deployments.registry import ModelRejected, model_version_register

pytestmark = [pytest.mark.security, pytest.mark.django_db]

WIDTH, CLASSES = 64, 10


def _weights() -> onnx.TensorProto:
    rng = np.random.default_rng(0)
    return numpy_helper.from_array(rng.normal(size=(WIDTH, CLASSES)).astype(np.float32), "w")


def _classifier(
    *,
    extra_nodes: list[onnx.NodeProto] | None = None,
    initializers: list[onnx.TensorProto] | None = None,
    sparse: list[onnx.SparseTensorProto] | None = None,
    opsets: list[onnx.OperatorSetIdProto] | None = None,
) -> onnx.ModelProto:
    """x @ w -> Softmax -> probabilities; extra_nodes read "logits0" and write "logits"."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["logits0"]), *(extra_nodes or [])]
    nodes.append(
        helper.make_node("Softmax", ["logits" if extra_nodes else "logits0"], ["p"], axis=1)
    )
    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", WIDTH])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", CLASSES])],
        initializers if initializers is not None else [_weights()],
        sparse_initializer=sparse or [],
    )
    return helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])


def _write(model: onnx.ModelProto, path: Path) -> Path:
    # Bytes as they are: onnx.save_model would try to resolve external data itself.
    path.write_bytes(model.SerializeToString())
    return path


def _pointing_to(tensor: onnx.TensorProto, location: str) -> onnx.TensorProto:
    """Make a tensor say its data lives in the file at location (as ONNX Runtime reads it)."""
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    for key, value in (("location", location), ("offset", "0"), ("length", "2560")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    tensor.data_location = TensorProto.EXTERNAL
    return tensor


def _external_parent(tmp: Path) -> Path:
    return _write(
        _classifier(initializers=[_pointing_to(_weights(), "../../../../etc/passwd")]),
        tmp / "parent.onnx",
    )


def _external_absolute(tmp: Path) -> Path:
    return _write(
        _classifier(initializers=[_pointing_to(_weights(), "/etc/passwd")]), tmp / "abs.onnx"
    )


def _external_symlink(tmp: Path) -> Path:
    (tmp / "weights.bin").symlink_to("/etc/passwd")
    return _write(
        _classifier(initializers=[_pointing_to(_weights(), "weights.bin")]), tmp / "link.onnx"
    )


def _external_flag_missing(tmp: Path) -> Path:
    # A "location" entry without the EXTERNAL flag: ONNX Runtime still follows it.
    weights = _pointing_to(_weights(), "../secret.bin")
    weights.data_location = TensorProto.DEFAULT
    return _write(_classifier(initializers=[weights]), tmp / "flagless.onnx")


def _external_sparse(tmp: Path) -> Path:
    values = _pointing_to(numpy_helper.from_array(np.ones(4, np.float32), "bias"), "/etc/shadow")
    indices = numpy_helper.from_array(np.arange(4, dtype=np.int64), "bias_indices")
    sparse = helper.make_sparse_tensor(values, indices, [CLASSES])
    model = _classifier(
        extra_nodes=[helper.make_node("Add", ["logits0", "bias"], ["logits"])], sparse=[sparse]
    )
    return _write(model, tmp / "sparse.onnx")


def _external_in_subgraph_constant(tmp: Path) -> Path:
    secret = _pointing_to(numpy_helper.from_array(np.zeros(CLASSES, np.float32), "c"), "../../k")
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["bias"], value=secret)],
        "branch",
        [],
        [helper.make_tensor_value_info("bias", TensorProto.FLOAT, [CLASSES])],
    )
    model = _classifier(
        extra_nodes=[
            helper.make_node("Constant", [], ["yes"], value=helper.make_tensor("t", 9, [], [1])),
            helper.make_node("If", ["yes"], ["bias"], then_branch=branch, else_branch=branch),
            helper.make_node("Add", ["logits0", "bias"], ["logits"]),
        ]
    )
    return _write(model, tmp / "subgraph.onnx")


def _oversize(tmp: Path) -> Path:
    return _write(_classifier(), tmp / "big.onnx")  # 2.6 kB, over the 2,000 bytes set below


def _custom_domain(tmp: Path) -> Path:
    model = _classifier(
        extra_nodes=[
            helper.make_node("Exfiltrate", ["logits0"], ["logits"], domain="com.example.hostile")
        ],
        opsets=[helper.make_opsetid("", 17), helper.make_opsetid("com.example.hostile", 1)],
    )
    return _write(model, tmp / "custom.onnx")


def _opset_too_new(tmp: Path) -> Path:
    return _write(_classifier(opsets=[helper.make_opsetid("", 999)]), tmp / "opset999.onnx")


def _opset_too_old(tmp: Path) -> Path:
    return _write(_classifier(opsets=[helper.make_opsetid("", 1)]), tmp / "opset1.onnx")


def _truncated(tmp: Path) -> Path:
    whole = _classifier().SerializeToString()
    path = tmp / "truncated.onnx"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def _random_bytes(tmp: Path) -> Path:
    path = tmp / "random.onnx"
    path.write_bytes(np.random.default_rng(13).bytes(8192))
    return path


def _huge_tensor(op: str) -> Callable[[Path], Path]:
    """A graph that asks for a 10^12-element tensor (4 TB of float32) on every run."""

    def build(tmp: Path) -> Path:
        shape = numpy_helper.from_array(np.array([1_000_000, 1_000_000], np.int64), "shape")
        if op == "ConstantOfShape":
            make = [helper.make_node("ConstantOfShape", ["shape"], ["huge"])]
        else:
            make = [
                helper.make_node("ReduceSum", ["x"], ["x_total"], keepdims=0),
                helper.make_node("Expand", ["x_total", "shape"], ["huge"]),
            ]
        model = _classifier(
            extra_nodes=[
                *make,
                helper.make_node("ReduceSum", ["huge"], ["total"], keepdims=0),
                helper.make_node("Add", ["logits0", "total"], ["logits"]),
            ],
            initializers=[_weights(), shape],
        )
        return _write(model, tmp / f"huge-{op}.onnx")

    return build


def _endless_loop(tmp: Path) -> Path:
    """A Loop of 2^62 iterations that adds one to a counter: only a CPU limit stops it."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["counter_in", "one"], ["counter_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("counter_in", TensorProto.FLOAT, []),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("counter_out", TensorProto.FLOAT, []),
        ],
        [numpy_helper.from_array(np.array(1.0, np.float32), "one")],
    )
    model = _classifier(
        extra_nodes=[
            helper.make_node("Loop", ["trips", "go", "start"], ["counted"], body=body),
            helper.make_node("Mul", ["counted", "zero"], ["nothing"]),
            helper.make_node("Add", ["logits0", "nothing"], ["logits"]),
        ],
        initializers=[
            _weights(),
            numpy_helper.from_array(np.array(2**62, np.int64), "trips"),
            numpy_helper.from_array(np.array(True), "go"),
            numpy_helper.from_array(np.array(0.0, np.float32), "start"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ],
    )
    return _write(model, tmp / "endless.onnx")


EXTERNAL = "keeps tensors in external data files"
UNREADABLE = "not a readable ONNX model"
MEMORY = "asked for more memory than the 4 GiB a model check may use"
# (name, builder, what the refusal must say)
CORPUS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("external data at ../", _external_parent, EXTERNAL),
    ("external data at an absolute path", _external_absolute, EXTERNAL),
    ("external data through a symlink out", _external_symlink, EXTERNAL),
    ("external data location without the flag", _external_flag_missing, EXTERNAL),
    ("external data in a sparse initializer", _external_sparse, EXTERNAL),
    ("external data in a subgraph's constant", _external_in_subgraph_constant, EXTERNAL),
    ("over the size cap", _oversize, "the limit is 2,000 bytes"),
    ("custom operator domain", _custom_domain, "custom domain 'com.example.hostile'"),
    ("opset 999", _opset_too_new, "opset 999 of ai.onnx"),
    ("opset 1", _opset_too_old, "opset 1 of ai.onnx"),
    ("truncated protobuf", _truncated, UNREADABLE),
    ("random bytes", _random_bytes, UNREADABLE),
    ("ConstantOfShape to 10^12 elements", _huge_tensor("ConstantOfShape"), MEMORY),
    ("Expand to 10^12 elements", _huge_tensor("Expand"), MEMORY),
    ("a loop of 2^62 iterations", _endless_loop, "s of CPU and was stopped"),
]


@pytest.fixture
def limits(settings, monkeypatch):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 2000}
    # Short CPU limit so the endless loop is stopped quickly; wall time well above it.
    monkeypatch.setattr(onnx_checks, "PROBE_CPU_SECONDS", 3)
    monkeypatch.setattr(onnx_checks, "PROBE_TIMEOUT_SECONDS", 60)


def _stored() -> tuple[int, int, list[Path]]:
    media = Path(settings.MEDIA_ROOT)
    return (
        ModelVersion.objects.count(),
        AuditEvent.objects.count(),
        sorted(path for path in media.rglob("*") if path.is_file()),
    )


@pytest.mark.parametrize(("name", "build", "says"), CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_model_is_refused_with_a_clear_reason_and_nothing_stored(
    name, build, says, queue, tmp_path, limits, figure
):
    path = build(tmp_path)
    if name != "over the size cap":
        # Every other file is small: the size cap is not what refuses it.
        settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 100 * 1024 * 1024}
    before = _stored()
    started = time.perf_counter()
    with pytest.raises(ModelRejected) as refusal:
        model_version_register(queue=queue, name="hostile", version="1", onnx_path=path)
    figure(f"{name}: seconds to refuse", round(time.perf_counter() - started, 2))
    message = str(refusal.value)
    assert says in message, message
    assert "\n" not in message and len(message) < 500
    assert _stored() == before
    # This process, which stands for the web server, is still here and still answers.
    assert os.getpid() and ModelVersion.objects.count() == 0


def test_a_good_model_still_passes_the_same_checks(queue, tmp_path, limits, settings):
    """The corpus's base classifier is valid, so each refusal comes from its hostile part."""
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 100 * 1024 * 1024}
    version = model_version_register(
        queue=queue, name="plain", version="1", onnx_path=_write(_classifier(), tmp_path / "ok")
    )
    assert (version.input_name, version.probability_output) == ("x", "p")
    assert version.notes["opset"] == 17


UPLOADABLE = [c for c in CORPUS if c[0] in ("truncated protobuf", "random bytes")] + [
    c for c in CORPUS if "10^12" in c[0] or "custom" in c[0]
]


@pytest.mark.parametrize(("name", "build", "says"), UPLOADABLE, ids=[c[0] for c in UPLOADABLE])
def test_the_upload_page_refuses_hostile_files_and_the_web_process_keeps_serving(
    name, build, says, client_for, admin_user, queue, tmp_path, limits, settings, figure
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 100 * 1024 * 1024}
    client = client_for(admin_user)
    upload = SimpleUploadedFile("model.onnx", build(tmp_path).read_bytes())
    form = {"queue": str(queue.pk), "name": "hostile", "version": "1", "labels": ""}
    response = client.post("/models/upload/", {**form, "onnx_file": upload})
    assert response.status_code == 400
    assert "The model was not registered" in response.content.decode()
    assert says.replace("'", "&#x27;") in response.content.decode()
    assert client.get("/models/upload/").status_code == 200
    assert ModelVersion.objects.count() == 0
    figure(f"upload of {name}: status", response.status_code)
