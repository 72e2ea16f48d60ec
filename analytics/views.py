"""Analytics pages for ML leads and admins: the overview, one page per report, CSV export."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from csp.decorators import csp_update
from django.contrib.auth.decorators import login_required, permission_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from analytics.export import export_csv_lines
from analytics.overview import queue_overview
from analytics.params import day_range_parse, shown
from analytics.registry import REPORT_KINDS, report_kind_titles
from analytics.samples import (
    SAMPLE_DEFAULT,
    SAMPLE_TITLES,
    SAMPLES,
    Sample,
    sample_parse,
    sample_text,
)
from analytics.selectors import ReportOptionInvalid, ReportScope
from analytics.summaries.confidence import ConfidenceReport
from analytics.summaries.headlines import HEADLINE_RULES
from analytics.views_deferral import deferral_context
from deployments.models import Deployment, ModelVersion
from deployments.selectors import queue_model_version_find
from inspections.models import Queue
from shadowlab import roles

# plotly.js writes style attributes on the SVG it draws and adds a <style> element for its
# modebar and hover labels; style-src 'self' blocks both (the browser test sees the console
# errors). Only chart pages widen style-src; scripts stay 'self'.
charts_csp = csp_update({"style-src": ["'unsafe-inline'"]})


def _model_version_pick(queue: Queue, key: str) -> ModelVersion | None:
    """Return the queue's version named name:version, else its live or shadow one, else any.

    Raise ValueError when a key is given that names none of the queue's versions: a report
    of another version than the one asked for would be read as the one asked for.
    """
    versions = ModelVersion.objects.select_related("queue", "parent").filter(queue=queue)
    if key:
        chosen = queue_model_version_find(queue=queue, key=key)
        if chosen is None:
            raise ValueError(
                f"queue '{queue.slug}' has no model version {shown(key)}; "
                "model must be one of its versions as <name>:<version>"
            )
        return chosen
    for role in (Deployment.Role.LIVE, Deployment.Role.SHADOW, Deployment.Role.CANARY):
        chosen = versions.filter(deployments__queue=queue, deployments__role=role).first()
        if chosen is not None:
            return chosen
    return versions.order_by("name", "created_at").first()


def _query(
    model_version: ModelVersion, since: date, until: date, sample: Sample, **more: object
) -> str:
    params = {"model": model_version.key, "since": since.isoformat(), "until": until.isoformat()}
    if sample != SAMPLE_DEFAULT:
        params["sample"] = sample
    return urlencode({**params, **{k: v for k, v in more.items() if v not in (None, "")}})


def _sample_links(request: HttpRequest, sample: Sample) -> list[dict[str, object]]:
    """Return the sample switch: this page's URL with each sample, the shown one marked."""
    links = []
    for choice in SAMPLES:
        params = {k: v for k, v in request.GET.items() if k not in ("sample", "page")}
        if choice != SAMPLE_DEFAULT:
            params["sample"] = choice
        query = urlencode(params)
        links.append(
            {
                "sample": choice,
                "title": SAMPLE_TITLES[choice],
                "url": f"{request.path}?{query}" if query else request.path,
                "current": choice == sample,
            }
        )
    return links


@require_GET
@login_required
@permission_required(roles.VIEW_REPORTS, raise_exception=True)
def overview(request: HttpRequest) -> HttpResponse:
    """Show every queue with its model versions side by side and a light per figure."""
    try:
        since, until = day_range_parse(request.GET)
        sample = sample_parse(request.GET)
    except ValueError as exc:
        return render(request, "analytics/overview.html", {"error": str(exc)}, status=400)
    queues = list(Queue.objects.order_by("name"))
    overviews = [
        queue_overview(queue=queue, since=since, until=until, sample=sample) for queue in queues
    ]
    context = {
        "overviews": overviews,
        "rules": HEADLINE_RULES,
        "since": since,
        "until": until,
        "kinds": report_kind_titles(),
        "sample": sample,
        "sample_title": SAMPLE_TITLES[sample],
        "sample_links": _sample_links(request, sample),
        "sample_query": "" if sample == SAMPLE_DEFAULT else f"&sample={sample}",
    }
    return render(request, "analytics/overview.html", context)


@require_GET
@login_required
@permission_required(roles.VIEW_REPORTS, raise_exception=True)
@charts_csp  # type: ignore[arg-type]  # django-csp types views as taking only the request
def report_page(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    """Show one report of a queue's model version over a range of days, with its charts."""
    if kind not in REPORT_KINDS:
        raise Http404(f"there is no report {kind!r}")
    report_kind = REPORT_KINDS[kind]
    wanted = request.GET.get("queue")
    if wanted and wanted != slug:
        target = get_object_or_404(Queue, slug=wanted)
        keep = {k: v for k, v in request.GET.items() if k in ("since", "until")}
        url = reverse("analytics:report", args=[target.slug, kind])
        return redirect(f"{url}?{urlencode(keep)}" if keep else url)
    queue = get_object_or_404(Queue, slug=slug)
    context: dict[str, object] = {
        "queue": queue,
        "queues": Queue.objects.order_by("name"),
        "versions": ModelVersion.objects.filter(queue=queue).order_by("name", "created_at"),
        "model_version": None,
        "kind": kind,
        "title": report_kind.title,
        "kinds": report_kind_titles(),
        "params": request.GET,
    }
    try:
        model_version = _model_version_pick(queue, request.GET.get("model", ""))
    except ValueError as exc:
        context["error"] = str(exc)
        return render(request, "analytics/report.html", context, status=400)
    context["model_version"] = model_version
    if model_version is None:
        return render(request, "analytics/report.html", context)
    try:
        since, until = day_range_parse(request.GET)
        sample = sample_parse(request.GET)
        options = report_kind.options_parse(request.GET)
    except ValueError as exc:
        context["error"] = str(exc)
        return render(request, "analytics/report.html", context, status=400)
    scope = ReportScope(
        queue=queue, model_version=model_version, since=since, until=until, sample=sample
    )
    try:
        report = report_kind.build(scope, options)
    except ReportOptionInvalid as exc:
        context["error"] = str(exc)
        return render(request, "analytics/report.html", context, status=400)
    query = _query(model_version, since, until, sample)
    filters = {k: request.GET.get(k, "") for k in report_kind.filters}
    page_query = _query(model_version, since, until, sample, **filters)
    if isinstance(report, ConfidenceReport):
        context["deferral"] = deferral_context(request, queue, report)
    context.update(
        sample=sample,
        sample_text=sample_text(sample=sample, model_version=model_version),
        sample_links=_sample_links(request, sample),
        since=since,
        until=until,
        report=report,
        charts=report_kind.charts(report),
        query=query,
        filters=filters,
        page_query=page_query,
        json_url=f"/api/v1/queues/{queue.slug}/reports/{kind}?{page_query}",
        export_url=f"{reverse('analytics:export', args=[queue.slug])}?{query}",
    )
    return render(request, "analytics/report.html", context)


@require_GET
@login_required
@permission_required(roles.VIEW_REPORTS, raise_exception=True)
def export_csv(request: HttpRequest, slug: str) -> HttpResponse | StreamingHttpResponse:
    """Stream the joined item-level data of a queue's model version over a range of days."""
    queue = get_object_or_404(Queue, slug=slug)
    try:
        model_version = _model_version_pick(queue, request.GET.get("model", ""))
    except ValueError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    if model_version is None:
        raise Http404(f"queue '{slug}' has no model version")
    try:
        since, until = day_range_parse(request.GET)
        sample = sample_parse(request.GET)
    except ValueError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    scope = ReportScope(
        queue=queue, model_version=model_version, since=since, until=until, sample=sample
    )
    suffix = "-audit" if sample == "audit" else ""
    name = f"{queue.slug}-{model_version.name}-{model_version.version}-{since}-{until}{suffix}.csv"
    return StreamingHttpResponse(
        export_csv_lines(scope),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
