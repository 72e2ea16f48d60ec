"""The admin-only model upload form: registers a good model, refuses bad or oversized ones."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from deployments.models import AuditEvent, ModelVersion

pytestmark = pytest.mark.django_db

UPLOAD = "/models/upload/"


def _npy(matrix: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, matrix, allow_pickle=False)
    return buffer.getvalue()


def _form(queue, onnx_bytes: bytes, reference: bytes | None = None, **fields: str) -> dict:
    form = {
        "queue": str(queue.pk),
        "name": "digits-mlp",
        "version": "7",
        "labels": "",
        "onnx_file": SimpleUploadedFile("digits.onnx", onnx_bytes, "application/octet-stream"),
        **fields,
    }
    if reference is not None:
        form["reference_file"] = SimpleUploadedFile("reference.npy", reference)
    return form


def _stored_files() -> list[Path]:
    return [path for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]


def _assert_nothing_stored() -> None:
    assert not ModelVersion.objects.exists()
    assert not AuditEvent.objects.exists()
    assert _stored_files() == []


def test_an_admin_registers_the_digits_model_with_its_reference_rows(
    client_for, admin_user, queue, digits_onnx, digits_split
):
    client = client_for(admin_user)
    form = _form(queue, digits_onnx.read_bytes(), _npy(digits_split.train_x[:500]))

    response = client.post(UPLOAD, form)

    assert response.status_code == 302
    assert response["Location"] == UPLOAD
    version = ModelVersion.objects.get()
    assert (version.queue, version.key, version.created_by) == (queue, "digits-mlp:7", admin_user)
    assert version.reference_rows == 500
    assert version.labels == queue.labels
    assert version.size_bytes == digits_onnx.stat().st_size
    assert AuditEvent.objects.filter(action="model_version.register", actor=admin_user).exists()
    assert "Registered digits-mlp:7" in client.get(UPLOAD).content.decode()


def test_a_corrupt_file_is_refused_with_400_and_the_reason_and_nothing_is_stored(
    client_for, admin_user, queue
):
    response = client_for(admin_user).post(UPLOAD, _form(queue, b"this is not an onnx model"))

    assert response.status_code == 400
    page = response.content.decode()
    assert "The model was not registered" in page
    assert "not a readable ONNX model" in page
    _assert_nothing_stored()


def test_a_reference_of_the_wrong_width_is_refused_and_nothing_is_stored(
    client_for, admin_user, queue, digits_onnx
):
    response = client_for(admin_user).post(
        UPLOAD, _form(queue, digits_onnx.read_bytes(), _npy(np.ones((10, 3), dtype=np.float32)))
    )

    assert response.status_code == 400
    assert "reference data must be a matrix with 64 columns" in response.content.decode()
    _assert_nothing_stored()


def test_an_ml_lead_may_not_upload(client_for, ml_lead, queue, digits_onnx):
    client = client_for(ml_lead)
    assert client.get(UPLOAD).status_code == 403
    assert client.post(UPLOAD, _form(queue, digits_onnx.read_bytes())).status_code == 403
    _assert_nothing_stored()


def test_an_upload_past_the_size_cap_is_refused_with_413_and_nothing_is_stored(
    settings, client_for, admin_user, queue
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 1000}
    # The request may carry two files of the cap each plus 1 MiB of form fields.
    too_big = b"\0" * (2 * 1000 + 1024 * 1024 + 1)

    response = client_for(admin_user).post(UPLOAD, _form(queue, too_big))

    assert response.status_code == 413
    assert "each file may be at most 1,000 bytes" in response.content.decode()
    _assert_nothing_stored()


def test_a_model_over_the_size_cap_inside_a_small_request_is_refused_with_the_limit(
    settings, client_for, admin_user, queue, digits_onnx
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 1000}
    size = digits_onnx.stat().st_size

    response = client_for(admin_user).post(UPLOAD, _form(queue, digits_onnx.read_bytes()))

    assert response.status_code == 400
    assert f"the ONNX file is {size:,} bytes; the limit is 1,000 bytes" in response.content.decode()
    _assert_nothing_stored()


def test_the_upload_form_still_checks_the_csrf_token(admin_user, queue, digits_onnx):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    response = client.post(UPLOAD, _form(queue, digits_onnx.read_bytes()))

    assert response.status_code == 403
    _assert_nothing_stored()
