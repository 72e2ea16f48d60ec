"""The register_model, quantize_model and deploy_shadow management commands, end to end."""

from __future__ import annotations

from io import StringIO
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from deployments.models import AuditEvent, Deployment, ModelVersion
from deployments.quantization import STEPS

pytestmark = pytest.mark.django_db


def _run(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def test_a_model_is_registered_quantized_put_in_shadow_and_retired(
    queue, digits_onnx, digits_split, ml_lead, tmp_path
):
    reference = tmp_path / "reference.npy"
    np.save(reference, digits_split.train_x)

    out = _run(
        "register_model",
        str(digits_onnx),
        queue="digits",
        name="digits-mlp",
        version="1",
        reference=str(reference),
        user="lead",
    )
    fp32 = ModelVersion.objects.get(name="digits-mlp", version="1")
    assert fp32.created_by == ml_lead
    assert fp32.reference_rows == len(digits_split.train_x)
    for shown in ("digits-mlp:1", fp32.sha256, fp32.input_name, "probabilities"):
        assert shown in out

    out = _run("quantize_model", "digits-mlp:1", user="lead")
    int8 = ModelVersion.objects.get(parent=fp32)
    assert int8.key == "digits-mlp:1-int8"
    assert "digits-mlp:1-int8" in out
    assert "static" in out
    assert f"{int8.notes['calibration_rows']:,}" in out
    assert f"{int8.notes['top1_agreement_with_parent']:.2%}" in out
    assert f"{fp32.size_bytes:,} -> {int8.size_bytes:,} bytes" in out

    out = _run("deploy_shadow", "digits-mlp:1-int8", user="lead")
    deployment = Deployment.objects.get(model_version=int8)
    assert deployment.role == Deployment.Role.SHADOW
    assert deployment.traffic_share == 0
    assert "digits-mlp:1-int8 is shadow on digits" in out

    out = _run("deploy_shadow", "digits-mlp:1-int8", "--retire", user="lead")
    deployment.refresh_from_db()
    assert deployment.role == Deployment.Role.RETIRED
    assert "retired" in out

    assert list(
        AuditEvent.objects.filter(actor=ml_lead).order_by("id").values_list("action", flat=True)
    ) == [
        "model_version.register",
        "model_version.register",
        "deployment.shadow_start",
        "deployment.retire",
    ]


def test_a_quantize_model_version_option_names_the_int8_version(model_version):
    out = _run("quantize_model", model_version.key, version="2-int8")
    assert ModelVersion.objects.get(version="2-int8").parent == model_version
    assert "digits-mlp:2-int8" in out


def test_quantize_model_reports_each_step_in_order_before_its_report(model_version):
    out = _run("quantize_model", model_version.key, version="3-int8")
    steps = [line for line in out.splitlines() if line.startswith("[")]
    assert [line.split("] ")[1].split(":")[0] for line in steps] == list(STEPS)
    assert steps[0].startswith("[1/5] load: digits-mlp:1")
    assert "reference rows in" in steps[1] and "s)" in steps[1]
    assert out.index("[5/5] save") < out.index("Registered digits-mlp:3-int8")


def test_quantize_model_is_quiet_about_steps_at_verbosity_zero(model_version):
    out = _run("quantize_model", model_version.key, version="4-int8", verbosity=0)
    assert "[1/5]" not in out


def test_registering_a_corrupt_file_fails_with_one_clear_line_and_exit_code_1(queue, tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CommandError, match="model refused: the file is not a readable ONNX") as err:
        _run("register_model", str(corrupt), queue="digits", name="broken", version="1")
    assert "\n" not in str(err.value)
    assert err.value.returncode == 1
    assert not ModelVersion.objects.exists()


def test_bad_reference_data_fails_the_registration(queue, digits_onnx, tmp_path):
    reference = tmp_path / "reference.csv"
    reference.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(CommandError, match="64 columns"):
        _run(
            "register_model",
            str(digits_onnx),
            queue="digits",
            name="digits-mlp",
            version="1",
            reference=str(reference),
        )
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"queue": "nope"}, "no queue with slug 'nope'"),
        ({"user": "nobody"}, "no user called 'nobody'"),
        ({"labels": "a,b"}, "must be the queue's labels"),
    ],
)
def test_register_model_names_what_is_wrong_with_its_options(queue, digits_onnx, options, message):
    with pytest.raises(CommandError, match=message):
        _run(
            "register_model",
            str(digits_onnx),
            **{"queue": "digits", "name": "digits-mlp", "version": "1", **options},
        )
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize("command", ["quantize_model", "deploy_shadow"])
@pytest.mark.parametrize(
    ("key", "message"),
    [("ghost:1", "no model version ghost:1"), ("ghost", "not a model key of the form")],
)
def test_commands_refuse_an_unknown_model_key(db, command, key, message):
    with pytest.raises(CommandError, match=message):
        _run(command, key)


def test_quantizing_an_int8_model_fails_with_the_reason(model_version):
    _run("quantize_model", model_version.key)
    with pytest.raises(CommandError, match="already int8"):
        _run("quantize_model", "digits-mlp:1-int8")


def test_deploy_shadow_refuses_a_live_model(model_version):
    Deployment.objects.create(
        queue=model_version.queue,
        model_version=model_version,
        role=Deployment.Role.LIVE,
        traffic_share=1.0,
        started_at=model_version.created_at,
    )
    with pytest.raises(CommandError, match="is live on digits; roll it back"):
        _run("deploy_shadow", model_version.key)
    with pytest.raises(CommandError, match="must be rolled back, not retired"):
        _run("deploy_shadow", model_version.key, "--retire")


def test_retiring_a_model_that_is_not_deployed_fails(model_version):
    with pytest.raises(CommandError, match="digits-mlp:1 is not deployed on digits"):
        _run("deploy_shadow", model_version.key, "--retire")
