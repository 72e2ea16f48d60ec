"""The model registry: what it refuses (storing nothing), what it stores, INT8 variants."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import onnx
import pytest
from django.conf import settings
from onnx import TensorProto, external_data_helper, helper, numpy_helper

from deployments import onnx_checks
from deployments.models import AuditEvent, ModelVersion
from deployments.registry import (
    ModelRejected,
    model_version_quantize,
    model_version_register,
    reference_data,
    reference_load,
)

pytestmark = pytest.mark.django_db


def _classifier(
    *,
    width: int = 64,
    classes: int = 10,
    activation: str = "Softmax",
    input_type: int = TensorProto.FLOAT,
    inputs: int = 1,
    extra_nodes: list[onnx.NodeProto] | None = None,
    extra_initializers: list[onnx.TensorProto] | None = None,
) -> onnx.ModelProto:
    """Build a linear classifier x @ w -> activation -> "probabilities" (a valid model by default).

    extra_nodes, if any, read "logits0" (x @ w) and produce "logits".
    """
    graph_inputs = [
        helper.make_tensor_value_info(f"x{n}" if n else "x", input_type, ["n", width])
        for n in range(inputs)
    ]
    nodes = []
    features = "x"
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["x_float"], to=TensorProto.FLOAT))
        features = "x_float"
    for n in range(1, inputs):
        nodes.append(helper.make_node("Add", [features, f"x{n}"], [f"sum{n}"]))
        features = f"sum{n}"
    weights = np.random.default_rng(0).normal(size=(width, classes)).astype(np.float32)
    nodes.append(helper.make_node("MatMul", [features, "w"], ["logits0"]))
    nodes.extend(extra_nodes or [])
    logits = "logits" if extra_nodes else "logits0"
    attributes: dict[str, Any] = {"axis": 1} if activation == "Softmax" else {}
    nodes.append(helper.make_node(activation, [logits], ["probabilities"], **attributes))
    graph = helper.make_graph(
        nodes,
        "classifier",
        graph_inputs,
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", classes])],
        [numpy_helper.from_array(weights, "w"), *(extra_initializers or [])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save_model(model, str(path))
    return path


def _stored() -> tuple[int, int, set[str]]:
    """What the registry has stored: model versions, audit events, files under MEDIA_ROOT."""
    media = Path(settings.MEDIA_ROOT)
    files = {str(path.relative_to(media)) for path in media.rglob("*") if path.is_file()}
    return ModelVersion.objects.count(), AuditEvent.objects.count(), files


def _refused(match: str, **register: Any) -> str:
    """Register, expect a one-line refusal matching `match` and nothing stored; return it."""
    before = _stored()
    with pytest.raises(ModelRejected, match=match) as refusal:
        model_version_register(**{"name": "candidate", "version": "1", **register})
    assert _stored() == before
    message = str(refusal.value)
    assert message and "\n" not in message
    return message


# Refusals ------------------------------------------------------------------------------------


def test_a_hand_built_softmax_classifier_is_accepted(queue, tmp_path):
    """The builder the refusal tests start from makes a valid model, so each defect is the cause."""
    model_version = model_version_register(
        queue=queue, name="linear", version="1", onnx_path=_save(_classifier(), tmp_path / "m.onnx")
    )
    assert model_version.input_name == "x"
    assert model_version.probability_output == "probabilities"


def test_a_file_of_random_bytes_is_refused_and_nothing_is_stored(queue, tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    _refused("not a readable ONNX model", queue=queue, onnx_path=path)


def test_an_empty_file_is_refused_and_nothing_is_stored(queue, tmp_path):
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    _refused("the ONNX file is empty", queue=queue, onnx_path=path)


def test_a_file_over_the_size_cap_is_refused_and_nothing_is_stored(queue, digits_onnx, settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 1000}
    message = _refused("the limit is 1,000 bytes", queue=queue, onnx_path=digits_onnx)
    assert f"{digits_onnx.stat().st_size:,} bytes" in message


def test_a_model_with_external_data_is_refused_and_nothing_is_stored(queue, tmp_path):
    model = _classifier()
    external_data_helper.convert_model_to_external_data(
        model, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0
    )
    path = tmp_path / "external.onnx"
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    assert (tmp_path / "weights.bin").exists()
    _refused("external data files", queue=queue, onnx_path=path)


def test_a_model_with_8_probability_columns_for_10_labels_is_refused(queue, tmp_path):
    path = _save(_classifier(classes=8), tmp_path / "eight.onnx")
    _refused("probabilities over 8 classes but 10 labels", queue=queue, onnx_path=path)


def test_a_model_whose_input_width_differs_from_the_queue_is_refused(queue, tmp_path):
    path = _save(_classifier(width=32), tmp_path / "narrow.onnx")
    _refused("expects 32 features per item but the queue has 64", queue=queue, onnx_path=path)


def test_a_model_with_two_inputs_is_refused(queue, tmp_path):
    path = _save(_classifier(inputs=2), tmp_path / "two.onnx")
    _refused("exactly one input, it has 2", queue=queue, onnx_path=path)


def test_a_model_with_an_int64_input_is_refused(queue, tmp_path):
    path = _save(_classifier(input_type=TensorProto.INT64), tmp_path / "int64.onnx")
    _refused("must be a float32 tensor", queue=queue, onnx_path=path)


def test_outputs_that_do_not_sum_to_one_are_caught_by_the_smoke_inference(queue, tmp_path):
    path = _save(_classifier(activation="Sigmoid"), tmp_path / "sigmoid.onnx")
    _refused(
        "smoke inference failed: the probability rows do not sum to 1", queue=queue, onnx_path=path
    )


def test_labels_that_are_not_the_queues_labels_are_refused(queue, digits_onnx):
    labels = [f"digit-{n}" for n in range(10)]
    _refused("must be the queue's labels", queue=queue, onnx_path=digits_onnx, labels=labels)


def test_a_duplicate_name_and_version_is_refused_and_the_first_stays(
    model_version, queue, digits_onnx
):
    _refused(
        "digits-mlp:1 is already registered",
        queue=queue,
        onnx_path=digits_onnx,
        name="digits-mlp",
        version="1",
    )
    assert ModelVersion.objects.get() == model_version


def test_a_model_that_exhausts_memory_in_the_smoke_inference_is_refused(queue, tmp_path):
    """Expand a scalar to twice the child's memory limit: only the child may run out."""
    columns = 65536
    rows = 2 * onnx_checks.PROBE_MEMORY_BYTES // (4 * columns)
    hostile = _classifier(
        extra_nodes=[
            helper.make_node("ReduceSum", ["x"], ["x_total"], keepdims=0),
            helper.make_node("Expand", ["x_total", "huge_shape"], ["huge"]),
            helper.make_node("ReduceSum", ["huge"], ["huge_total"], keepdims=0),
            helper.make_node("Add", ["logits0", "huge_total"], ["logits"]),
        ],
        extra_initializers=[numpy_helper.from_array(np.array([rows, columns]), "huge_shape")],
    )
    path = _save(hostile, tmp_path / "hostile.onnx")
    message = _refused("smoke inference", queue=queue, onnx_path=path)
    assert "allocate" in message.lower() or "memory" in message.lower()


def test_a_model_that_runs_too_long_in_the_smoke_inference_is_refused(queue, tmp_path, monkeypatch):
    """An 8192 x 8192 matrix product takes far longer than the (shortened) time limit."""
    monkeypatch.setattr(onnx_checks, "PROBE_TIMEOUT_SECONDS", 2)
    slow = _classifier(
        extra_nodes=[
            helper.make_node("ReduceSum", ["x"], ["x_total"], keepdims=0),
            helper.make_node("Expand", ["x_total", "square_shape"], ["square"]),
            helper.make_node("MatMul", ["square", "square"], ["product"]),
            helper.make_node("ReduceSum", ["product"], ["product_total"], keepdims=0),
            helper.make_node("Add", ["logits0", "product_total"], ["logits"]),
        ],
        extra_initializers=[numpy_helper.from_array(np.array([8192, 8192]), "square_shape")],
    )
    path = _save(slow, tmp_path / "slow.onnx")
    _refused("model check did not finish within 2 s", queue=queue, onnx_path=path)


def test_a_failure_while_saving_removes_the_stored_files(queue, digits_onnx, digits_split):
    with (
        mock.patch("deployments.registry.audit_record", side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError, match="disk full"),
    ):
        model_version_register(
            queue=queue,
            name="digits-mlp",
            version="1",
            onnx_path=digits_onnx,
            reference=digits_split.train_x,
        )
    assert _stored() == (0, 0, set())


# What a registration stores ------------------------------------------------------------------


def test_registration_stores_the_file_its_signature_reference_and_an_audit_event(
    model_version, digits_onnx, digits_split, admin_user
):
    onnx_model = onnx.load_model(str(digits_onnx))
    assert model_version.sha256 == hashlib.sha256(digits_onnx.read_bytes()).hexdigest()
    assert model_version.size_bytes == digits_onnx.stat().st_size
    assert model_version.input_name == onnx_model.graph.input[0].name
    assert model_version.probability_output == "probabilities"
    assert model_version.labels == [str(digit) for digit in range(10)]
    assert model_version.input_width == 64
    assert model_version.variant == ModelVersion.Variant.FP32
    assert model_version.parent is None
    assert model_version.notes["opset"] == 17
    assert model_version.created_by == admin_user
    with model_version.onnx_file.open("rb") as handle:
        assert handle.read() == digits_onnx.read_bytes()
    assert model_version.reference_rows == len(digits_split.train_x)
    assert np.array_equal(reference_data(model_version), digits_split.train_x)
    event = AuditEvent.objects.get()
    assert event.action == "model_version.register"
    assert event.actor == admin_user
    assert event.subject == "digits-mlp:1"
    assert event.after["sha256"] == model_version.sha256
    assert event.after["reference_rows"] == len(digits_split.train_x)


# Reference data ------------------------------------------------------------------------------


@pytest.fixture
def reference_rows(digits_split) -> np.ndarray:
    return digits_split.train_x[:50]


def test_reference_data_is_read_from_a_csv_without_a_header(tmp_path, reference_rows):
    path = tmp_path / "reference.csv"
    np.savetxt(path, reference_rows, delimiter=",")
    assert np.array_equal(reference_load(path, width=64), reference_rows)


def test_reference_data_is_read_from_a_csv_with_a_header_line(tmp_path, reference_rows):
    path = tmp_path / "reference.csv"
    header = ",".join(f"pixel_{n}" for n in range(64))
    np.savetxt(path, reference_rows, delimiter=",", header=header, comments="")
    assert np.array_equal(reference_load(path, width=64), reference_rows)


def test_reference_data_is_read_from_npy_as_float32(tmp_path, reference_rows):
    path = tmp_path / "reference.npy"
    np.save(path, reference_rows.astype(np.int64))
    loaded = reference_load(path, width=64)
    assert loaded.dtype == np.float32
    assert np.array_equal(loaded, reference_rows)


def test_reference_data_of_the_wrong_width_is_refused(tmp_path, reference_rows):
    path = tmp_path / "reference.npy"
    np.save(path, reference_rows[:, :60])
    with pytest.raises(ModelRejected, match="64 columns, got shape \\[50, 60\\]"):
        reference_load(path, width=64)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_reference_data_with_nan_or_infinity_is_refused(tmp_path, reference_rows, bad, suffix):
    """Also in the first row of a csv, which must not be mistaken for a header."""
    rows = reference_rows.copy()
    rows[0, 3] = bad
    path = tmp_path / f"reference{suffix}"
    if suffix == ".npy":
        np.save(path, rows)
    else:
        np.savetxt(path, rows, delimiter=",")
    with pytest.raises(ModelRejected, match="NaN or infinite"):
        reference_load(path, width=64)


class _Payload:
    """Unpickling this creates the marker file: proof that pickled code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickled_object_array_is_refused_without_unpickling_it(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "reference.npy"
    np.save(path, np.array([[_Payload(marker)] * 64], dtype=object), allow_pickle=True)
    with pytest.raises(ModelRejected, match="could not be read: Object arrays cannot be loaded"):
        reference_load(path, width=64)
    assert not marker.exists()


def test_an_npz_archive_named_npy_is_refused(tmp_path, reference_rows):
    path = tmp_path / "reference.npy"
    with path.open("wb") as handle:
        np.savez(handle, rows=reference_rows)
    with pytest.raises(ModelRejected, match="archive"):
        reference_load(path, width=64)


@pytest.mark.parametrize(
    ("values", "dtype"), [([[1 + 2j, 3]], np.complex64), ([[True, False]], np.bool_)]
)
def test_reference_data_that_is_not_real_numbers_is_refused(tmp_path, values, dtype):
    path = tmp_path / "reference.npy"
    np.save(path, np.array(values, dtype=dtype))
    with pytest.raises(ModelRejected, match="must be numeric"):
        reference_load(path, width=2)


def test_reference_data_in_another_format_is_refused(tmp_path, reference_rows):
    path = tmp_path / "reference.txt"
    np.savetxt(path, reference_rows)
    with pytest.raises(ModelRejected, match=r"must be a \.npy or \.csv file"):
        reference_load(path, width=64)


def test_a_reference_file_over_the_size_cap_is_refused(tmp_path, reference_rows, settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 1000}
    path = tmp_path / "reference.npy"
    np.save(path, reference_rows)
    with pytest.raises(ModelRejected, match="the limit is 1,000"):
        reference_load(path, width=64)


def test_a_registration_with_reference_data_of_the_wrong_width_is_refused(queue, digits_onnx):
    _refused(
        "reference data must have 64 columns",
        queue=queue,
        onnx_path=digits_onnx,
        reference=np.zeros((10, 3), dtype=np.float32),
    )


# Quantization --------------------------------------------------------------------------------


def test_quantization_registers_a_faithful_int8_child(model_version, digits_split, admin_user):
    int8 = model_version_quantize(model_version=model_version, created_by=admin_user)
    assert int8.key == "digits-mlp:1-int8"
    assert int8.variant == ModelVersion.Variant.INT8
    assert int8.parent == model_version
    assert int8.queue == model_version.queue
    assert int8.labels == model_version.labels
    assert int8.notes["quantization"] == "static"
    assert int8.notes["calibration_rows"] == min(1000, len(digits_split.train_x))
    assert int8.notes["top1_agreement_with_parent"] >= 0.99
    assert int8.sha256 != model_version.sha256
    assert int8.reference_rows == model_version.reference_rows
    assert AuditEvent.objects.filter(action="model_version.register").count() == 2


def test_quantizing_an_int8_model_again_is_refused(model_version, admin_user):
    int8 = model_version_quantize(model_version=model_version, created_by=admin_user)
    before = _stored()
    with pytest.raises(ModelRejected, match="digits-mlp:1-int8 is already int8"):
        model_version_quantize(model_version=int8, created_by=admin_user)
    assert _stored() == before


def test_quantization_stores_a_parity_report_against_the_parent(model_version):
    int8 = model_version_quantize(model_version=model_version)
    parity = int8.notes["parity"]
    assert parity["passes"] is True
    (reference,) = [a for a in parity["agreements"] if a["source"] == "reference data"]
    assert reference["rows"] == model_version.reference_rows
    assert reference["top1_agreement"] >= 0.995
    assert 0 <= reference["max_probability_difference"] < 0.5
    assert sum(reference["flips_by_class"].values()) == round(
        (1 - reference["top1_agreement"]) * reference["rows"]
    )
    assert [row["batch"] for row in parity["latency"]] == [1, 64, 512]
    assert all(
        row["fp32_us_per_row"] > 0 and row["int8_us_per_row"] > 0 for row in parity["latency"]
    )
    assert parity["int8_bytes"] < parity["fp32_bytes"]


def test_quantization_compares_on_recent_items_too(model_version, queue, digit_rows):
    from inspections.services import item_create

    for n, row in enumerate(digit_rows[:40]):
        item_create(queue=queue, external_id=f"recent-{n}", features=row.tolist())
    int8 = model_version_quantize(model_version=model_version)
    (recent,) = [a for a in int8.notes["parity"]["agreements"] if a["source"] == "recent items"]
    assert recent["rows"] == 40


def test_int8_below_the_agreement_floor_is_refused_unless_forced(model_version, settings):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "INT8_MIN_AGREEMENT": 1.01}
    before = _stored()
    with pytest.raises(ModelRejected, match=r"agrees with its parent on only .*--force"):
        model_version_quantize(model_version=model_version)
    assert _stored() == before
    forced = model_version_quantize(model_version=model_version, force=True)
    assert forced.notes["forced"] is True
    assert forced.notes["parity"]["passes"] is False
