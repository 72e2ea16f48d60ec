"""The adjudication page: an ml_lead records an item's true label without knowing who said what."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from analytics import adjudication
from analytics.models import Adjudication
from deployments.models import ModelVersion
from inspections.models import Item, Queue
from inspections.selectors import item_image_svg
from shadowlab import roles
from shadowlab.http import AuthenticatedRequest


def _scope(request: AuthenticatedRequest, slug: str) -> tuple[Queue, ModelVersion]:
    queue = get_object_or_404(Queue, slug=slug)
    model_version = adjudication.adjudication_model_version(
        queue=queue, key=request.GET.get("model") or request.POST.get("model") or None
    )
    if model_version is None:
        raise Http404(f"queue '{slug}' has no such model version, and none in shadow")
    return queue, model_version


def _next_url(queue: Queue, model_version: ModelVersion) -> str:
    query = urlencode({"model": model_version.key})
    return f"{reverse('analytics:adjudicate_next', args=[queue.slug])}?{query}"


def _list_url(queue: Queue, model_version: ModelVersion) -> str:
    url = reverse("analytics:report", args=[queue.slug, "disagreements"])
    return f"{url}?{urlencode({'model': model_version.key})}"


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(roles.VIEW_REPORTS, raise_exception=True)
def adjudicate(request: AuthenticatedRequest, slug: str, item_id: int) -> HttpResponse:
    """Show a disagreement's candidate labels in random order; on POST record the choice."""
    queue, model_version = _scope(request, slug)
    item = get_object_or_404(Item.objects.select_related("queue"), pk=item_id, queue=queue)
    message, status = "", 200
    if request.method == "POST":
        try:
            adjudication.adjudication_record(
                item=item,
                adjudicator=request.user,
                label=request.POST.get("label", ""),
                note=request.POST.get("note", ""),
            )
        except adjudication.AdjudicationRejected as exc:
            message, status = str(exc), 409
        else:
            return redirect(_next_url(queue, model_version))
    recorded = Adjudication.objects.select_related("adjudicator").filter(item=item).first()
    offer = adjudication.adjudication_candidates(item=item, model_version=model_version)
    if offer is None and recorded is None:
        raise Http404(f"item {item.external_id} is not a disagreement of {model_version.key}")
    context = {
        "queue": queue,
        "item": item,
        "model_key": model_version.key,
        "image": item_image_svg(item) if queue.shows_image else None,
        "offer": offer,
        "recorded": recorded,
        "message": message,
        "next_url": _next_url(queue, model_version),
    }
    return render(request, "analytics/adjudicate.html", context, status=status)


@require_GET
@login_required
@permission_required(roles.VIEW_REPORTS, raise_exception=True)
def adjudicate_next(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Go to the newest disagreement left to adjudicate, or back to the list if none is."""
    queue, model_version = _scope(request, slug)
    item = adjudication.adjudication_next(queue=queue, model_version=model_version)
    if item is None:
        messages.info(request, f"Every disagreement of {model_version.key} is adjudicated.")
        return redirect(_list_url(queue, model_version))
    url = reverse("analytics:adjudicate", args=[queue.slug, item.pk])
    return redirect(f"{url}?{urlencode({'model': model_version.key})}")
