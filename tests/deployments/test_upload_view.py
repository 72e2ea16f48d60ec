"""The admin-only model upload form: registers a good model, refuses bad or oversized ones."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.test import Client
from django.test.client import FakePayload

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


@pytest.mark.security
def test_a_model_over_the_size_cap_inside_a_small_request_is_refused_with_the_limit(
    settings, client_for, admin_user, queue, digits_onnx
):
    # The request fits the cap of two files; the one file in it does not. The upload stops
    # at the file's cap while it is read, before the registry ever sees the file.
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 1000}
    assert digits_onnx.stat().st_size > 2 * 1000

    response = client_for(admin_user).post(UPLOAD, _form(queue, digits_onnx.read_bytes()))

    assert response.status_code == 413
    assert "each file may be at most 1,000 bytes" in response.content.decode()
    _assert_nothing_stored()


def test_the_upload_form_still_checks_the_csrf_token(admin_user, queue, digits_onnx):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)

    response = client.post(UPLOAD, _form(queue, digits_onnx.read_bytes()))

    assert response.status_code == 403
    _assert_nothing_stored()


def _multipart_with_file(size: int) -> tuple[bytes, str]:
    boundary = "BoUnDaRy"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + b"\0" * size
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.fixture
def body_reads(monkeypatch) -> list[int]:
    """Sizes of every read of a request body the test client sends."""
    sizes: list[int] = []
    real_read = FakePayload.read

    def spy(payload, size=-1):
        chunk = real_read(payload, size)
        sizes.append(len(chunk))
        return chunk

    monkeypatch.setattr(FakePayload, "read", spy)
    return sizes


@pytest.fixture
def spooled(monkeypatch) -> list[int]:
    """Sizes of every chunk of an uploaded file handed on to be kept (memory or disk)."""
    sizes: list[int] = []
    for handler in (MemoryFileUploadHandler, TemporaryFileUploadHandler):
        real = handler.receive_data_chunk

        def spy(self, raw_data, start, real=real):
            sizes.append(len(raw_data))
            return real(self, raw_data, start)

        monkeypatch.setattr(handler, "receive_data_chunk", spy)
    return sizes


# Pages that read a POST body as a form, each with a user it lets through to the reading.
FORM_READERS = [
    pytest.param(UPLOAD, "admin_user", id="model-upload"),
    pytest.param("/inspect/digits/judge", "inspector", id="judge"),
    pytest.param("/accounts/login/", None, id="login"),
]


@pytest.mark.security
@pytest.mark.parametrize(("path", "role"), FORM_READERS)
def test_a_body_declared_past_the_cap_is_not_read_by_any_view(
    request, settings, client_for, queue, body_reads, spooled, figure, path, role
):
    # Two files of the cap plus the form fields' MiB: a 3 MB body is past it.
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 1000}
    body, content_type = _multipart_with_file(3 * 1024 * 1024)
    user = request.getfixturevalue(role) if role else None

    response = client_for(user).generic("POST", path, body, content_type=content_type)

    assert response.status_code < 500
    if path == UPLOAD:
        assert response.status_code == 413
    assert sum(body_reads) == 0
    assert spooled == []
    figure(f"bytes read of a 3 MB body to {path}", sum(body_reads))
    _assert_nothing_stored()


@pytest.mark.security
@pytest.mark.parametrize(("path", "role"), FORM_READERS)
def test_a_file_past_the_cap_stops_being_read_and_kept_at_the_cap(
    request, settings, client_for, queue, body_reads, spooled, figure, path, role
):
    # Within the request's cap, but the one file is a hundred times the file cap: reading
    # stops at the chunk that passes it, and nothing past the cap is kept in memory or disk.
    settings.SHADOWLAB = {**settings.SHADOWLAB, "MODEL_MAX_BYTES": 8 * 1024}
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # every file goes to disk: the worst case
    size = 800 * 1024
    body, content_type = _multipart_with_file(size)
    user = request.getfixturevalue(role) if role else None

    response = client_for(user).generic("POST", path, body, content_type=content_type)

    assert response.status_code < 500
    if path == UPLOAD:
        assert response.status_code == 413
    assert sum(spooled) <= 8 * 1024
    # The parser reads in 64 KiB chunks: a few of them, never the whole 800 KiB.
    assert sum(body_reads) <= 4 * 64 * 1024
    figure(f"bytes read of an 800 KiB file to {path}", sum(body_reads))
    _assert_nothing_stored()
