"""The audit log page and its CSV export, for ml_leads and admins."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from deployments import audit_log
from inspections.models import Queue
from shadowlab import roles


def _choices() -> dict[str, object]:
    return {
        "queues": Queue.objects.order_by("name"),
        "actions": audit_log.audit_actions(),
        "page_sizes": (25, 50, 100, 200),
    }


@require_GET
@login_required
@permission_required(roles.VIEW_AUDIT_LOG, raise_exception=True)
def audit_page(request: HttpRequest) -> HttpResponse:
    """Show the audit log, newest first, filtered by queue, action, actor and UTC days."""
    context: dict[str, object] = {"params": request.GET, **_choices()}
    try:
        filters = audit_log.audit_filters_parse(request.GET)
        page_number, page_size = audit_log.page_parse(request.GET)
    except ValueError as exc:
        context["error"] = str(exc)
        return render(request, "deployments/audit.html", context, status=400)
    page = audit_log.audit_page(filters, page=page_number, page_size=page_size)
    query = filters.query()
    context.update(
        filters=filters,
        page=page,
        page_size=page_size,
        rows=[
            {
                "event": event,
                "before": audit_log.compact(event.before),
                "after": audit_log.compact(event.after),
            }
            for event in page.object_list
        ],
        page_query=urlencode({**query, "page_size": page_size}),
        export_query=urlencode(query),
        capped=(
            audit_log.export_capped_sentence(audit_log.EXPORT_MAX_ROWS)
            if page.paginator.count > audit_log.EXPORT_MAX_ROWS
            else ""
        ),
    )
    return render(request, "deployments/audit.html", context)


@require_GET
@login_required
@permission_required(roles.VIEW_AUDIT_LOG, raise_exception=True)
def audit_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    """Stream the filtered audit log as CSV, newest first, capped at EXPORT_MAX_ROWS rows."""
    try:
        filters = audit_log.audit_filters_parse(request.GET)
    except ValueError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    name = f"audit-{filters.queue.slug if filters.queue else 'all'}-{date.today()}.csv"
    return StreamingHttpResponse(
        audit_log.audit_csv_lines(filters),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
