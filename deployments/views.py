"""The admin-only model upload form."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from deployments.forms import ModelUploadForm
from deployments.onnx_checks import ModelRejected
from deployments.registry import model_version_register, reference_load
from deployments.uploads import SizeCapUploadHandler
from shadowlab import roles


def _to_disk(upload: UploadedFile, folder: Path, name: str) -> Path:
    path = folder / name
    with path.open("wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)
    return path


# CSRF is checked by the inner view: the size cap must be installed before anything reads
# the body, and the CSRF middleware would read it first (Django's documented pattern).
@csrf_exempt
@login_required
@permission_required(roles.REGISTER_MODELS, raise_exception=True)
def upload(request: HttpRequest) -> HttpResponse:
    # Two files of at most MODEL_MAX_BYTES each, plus the form fields.
    cap = 2 * settings.SHADOWLAB["MODEL_MAX_BYTES"] + 1024 * 1024
    if request.method == "POST":
        if int(request.META.get("CONTENT_LENGTH") or 0) > cap:
            return _too_large(request)
        request.upload_handlers = [
            SizeCapUploadHandler(request, max_bytes=cap),
            *request.upload_handlers,
        ]
    return _upload(request)


def _too_large(request: HttpRequest) -> HttpResponse:
    form = ModelUploadForm()
    form.cleaned_data = {}  # add_error() expects a cleaned form; this one was never bound
    limit = settings.SHADOWLAB["MODEL_MAX_BYTES"]
    form.add_error(None, f"The upload is too large: each file may be at most {limit:,} bytes.")
    return render(request, "deployments/upload.html", {"form": form}, status=413)


@csrf_protect
def _upload(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "deployments/upload.html", {"form": ModelUploadForm()})
    form = ModelUploadForm(request.POST, request.FILES)
    if any(getattr(h, "exceeded", False) for h in request.upload_handlers):
        return _too_large(request)
    if not form.is_valid():
        return render(request, "deployments/upload.html", {"form": form}, status=400)
    data = form.cleaned_data
    folder = Path(tempfile.mkdtemp(prefix="shadowlab-upload-"))
    try:
        onnx_path = _to_disk(data["onnx_file"], folder, "model.onnx")
        reference = None
        if data["reference_file"]:
            suffix = Path(data["reference_file"].name).suffix.lower()
            reference = reference_load(
                _to_disk(data["reference_file"], folder, f"reference{suffix}"),
                width=data["queue"].input_width,
            )
        version = model_version_register(
            queue=data["queue"],
            name=data["name"],
            version=data["version"],
            onnx_path=onnx_path,
            labels=data["labels"],
            reference=reference,
            created_by=cast(User, request.user),
        )
    except ModelRejected as exc:
        form.add_error(None, f"The model was not registered: {exc}.")
        return render(request, "deployments/upload.html", {"form": form}, status=400)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    messages.success(
        request,
        f"Registered {version.key} for {version.queue.name}. "
        "Put it in shadow from the admin's model version list.",
    )
    return redirect("deployments:upload")
