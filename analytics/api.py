"""JSON of every analytics report, for ml_leads and admins with a browser session."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from analytics.params import day_range_parse, report_options
from analytics.selectors import REPORT_KINDS, ReportScope, report_build
from analytics.serialize import jsonable
from deployments.models import ModelVersion
from inspections.models import Queue
from shadowlab import roles
from shadowlab.api import api

router = Router(tags=["analytics"])


def _problem(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


@router.get(
    "/{slug}/reports/{kind}",
    auth=None,  # Session users, checked below: the API's default is the intake bearer token.
    summary="Read an analytics report as JSON",
)
def report_read(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    """Return one report of a queue's model version over a range of UTC days."""
    user = request.user
    if not user.is_authenticated:
        return _problem(request, 401, "log in as an ml_lead or admin to read reports")
    if not roles.can_view_reports(user):
        return _problem(request, 403, "reading reports needs the ml_lead or admin role")
    if kind not in REPORT_KINDS:
        return _problem(
            request, 400, f"unknown report {kind!r}; expected one of {', '.join(REPORT_KINDS)}"
        )
    queue = Queue.objects.filter(slug=slug).first()
    if queue is None:
        return _problem(request, 404, f"there is no queue '{slug}'")
    model = request.GET.get("model", "")
    name, _, version = model.partition(":")
    if not name or not version:
        return _problem(request, 400, "model must be given as <name>:<version>")
    model_version = (
        ModelVersion.objects.select_related("queue", "parent")
        .filter(queue=queue, name=name, version=version)
        .first()
    )
    if model_version is None:
        return _problem(request, 404, f"queue '{slug}' has no model version {model}")
    try:
        since, until = day_range_parse(request.GET)
        options = report_options(kind, request.GET)
    except ValueError as exc:
        return _problem(request, 400, str(exc))
    scope = ReportScope(queue=queue, model_version=model_version, since=since, until=until)
    report = report_build(kind=kind, scope=scope, options=options)
    body = {
        "kind": kind,
        "queue": queue.slug,
        "model": model_version.key,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "report": jsonable(report),
    }
    return api.create_response(request, body, status=200)
