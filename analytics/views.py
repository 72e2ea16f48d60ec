"""Analytics pages for ML leads and admins."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from analytics import reports
from inspections.models import Queue
from shadowlab import roles


@require_GET
@login_required
@permission_required(roles.VIEW_REPORTS, raise_exception=True)
def overview(request: HttpRequest) -> HttpResponse:
    overviews = [reports.queue_overview(queue) for queue in Queue.objects.order_by("name")]
    return render(request, "analytics/overview.html", {"overviews": overviews})
