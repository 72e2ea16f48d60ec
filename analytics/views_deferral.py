"""The confidence report's "use this threshold" action: an admin sets the deferral threshold."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from analytics.params import day_range_parse
from analytics.samples import SAMPLE_DEFAULT, sample_parse
from analytics.summaries.confidence import ConfidenceReport
from deployments.deferral import queue_deferral_threshold_set
from deployments.selectors import queue_model_version_find
from inspections.models import Queue
from shadowlab import roles

MODEL_KEY_MAX_CHARS = 200


def deferral_context(
    request: HttpRequest, queue: Queue, report: ConfidenceReport
) -> dict[str, Any]:
    """Return what the confidence page shows of the threshold, and the admin's form."""
    return {
        "report": report.deferral,
        "threshold": queue.deferral_threshold,
        "can_set": roles.can_set_deferral_threshold(request.user),
        "action": reverse("analytics:deferral_threshold", args=[queue.slug]),
        # Read by static/js/deferral.js to preview a typed threshold's figures.
        "curve": {
            "thresholds": report.coverage_thresholds,
            "items": report.coverage_items,
            "share": report.coverage_share,
            "agreement": report.coverage_agreement,
            "low": report.coverage_low,
            "high": report.coverage_high,
            "n": report.n,
            "min_items": report.deferral.min_items if report.deferral else 0,
        },
    }


def _refused(text: str) -> HttpResponse:
    return HttpResponse(text, status=400, content_type="text/plain")


@require_POST
@login_required
@permission_required(roles.CHANGE_QUEUE, raise_exception=True)
def deferral_threshold_post(request: HttpRequest, slug: str) -> HttpResponse:
    """Set the queue's deferral threshold from the confidence report, then show it there."""
    queue = get_object_or_404(Queue, slug=slug)
    try:
        since, until = day_range_parse(request.POST)
        sample = sample_parse(request.POST)
    except ValueError as exc:
        return _refused(str(exc))
    version = queue_model_version_find(
        queue=queue, key=request.POST.get("model", "")[:MODEL_KEY_MAX_CHARS]
    )
    if version is None:
        return _refused("model must name a version of this queue as name:version")
    where = f"confidence report of {version.key}, {since} to {until}, {sample} items"
    try:
        queue_deferral_threshold_set(
            queue=queue,
            threshold=request.POST.get("threshold", "").strip(),
            actor=cast(User, request.user),
            evidence=where,
        )
    except ValueError as exc:
        return _refused(f"Not set: {exc}.")
    messages.success(
        request, f"The deferral threshold of {queue.name} is {queue.deferral_threshold:g}."
    )
    params = {"model": version.key, "since": since.isoformat(), "until": until.isoformat()}
    if sample != SAMPLE_DEFAULT:
        params["sample"] = sample
    url = reverse("analytics:report", args=[queue.slug, "confidence"])
    return redirect(f"{url}?{urlencode(params)}#deferral")
