"""The page of one model version with its whole history, for ml_leads and admins."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from deployments.history import model_version_history
from deployments.models import ModelVersion
from deployments.selectors import model_version_get_by_key
from shadowlab.http import AuthenticatedRequest

VIEW_MODEL_VERSIONS = "deployments.view_modelversion"


@require_GET
@login_required
@permission_required(VIEW_MODEL_VERSIONS, raise_exception=True)
def model_version_page(request: AuthenticatedRequest, key: str) -> HttpResponse:
    """Show a model version's registration, roles, events, gate evaluations and promotions."""
    try:
        version = model_version_get_by_key(key)
    except ModelVersion.DoesNotExist as exc:
        raise Http404(str(exc)) from None
    history = model_version_history(model_version=version)
    notes = version.notes if isinstance(version.notes, dict) else {}
    context = {
        "model_version": version,
        "history": history,
        "quantization": notes.get("quantization"),
        "parity_with_parent": notes.get("top1_agreement_with_parent"),
    }
    return render(request, "deployments/model_version.html", context)
