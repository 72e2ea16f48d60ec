"""JSON of every analytics report, for ml_leads and admins with a browser session."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Router

from analytics.params import day_range_parse, shown
from analytics.registry import REPORT_KINDS
from analytics.samples import sample_parse, sample_text
from analytics.selectors import ReportOptionInvalid, ReportScope
from analytics.summaries.serialize import jsonable
from deployments.selectors import model_key_parse, queue_model_version_find
from shadowlab import roles
from shadowlab.api import api, problem_response, queue_or_problem

router = Router(tags=["analytics"])


@router.get(
    "/{slug}/reports/{kind}",
    auth=None,  # Session users, checked below: the API's default is the intake bearer token.
    summary="Read an analytics report as JSON",
)
def report_read(request: HttpRequest, slug: str, kind: str) -> HttpResponse:
    """Return one report of a queue's model version over a range of UTC days.

    ?sample=audit narrows it to the version's audit sample: the items it decided at intake
    that also went to inspectors for audit.
    """
    user = request.user
    if not user.is_authenticated:
        return problem_response(request, 401, "log in as an ml_lead or admin to read reports")
    if not roles.can_view_reports(user):
        return problem_response(request, 403, "reading reports needs the ml_lead or admin role")
    if kind not in REPORT_KINDS:
        return problem_response(
            request, 400, f"unknown report {shown(kind)}; expected one of {', '.join(REPORT_KINDS)}"
        )
    queue = queue_or_problem(request, slug)
    if isinstance(queue, HttpResponse):
        return queue
    model = request.GET.get("model", "")
    try:
        model_key_parse(model)
    except ValueError:
        return problem_response(request, 400, "model must be given as <name>:<version>")
    model_version = queue_model_version_find(queue=queue, key=model)
    if model_version is None:
        return problem_response(
            request, 404, f"queue '{queue.slug}' has no model version {shown(model)}"
        )
    try:
        since, until = day_range_parse(request.GET)
        sample = sample_parse(request.GET)
        options = REPORT_KINDS[kind].options_parse(request.GET)
    except ValueError as exc:
        return problem_response(request, 400, str(exc))
    scope = ReportScope(
        queue=queue, model_version=model_version, since=since, until=until, sample=sample
    )
    try:
        report = REPORT_KINDS[kind].build(scope, options)
    except ReportOptionInvalid as exc:
        return problem_response(request, 400, str(exc))
    body = {
        "kind": kind,
        "queue": queue.slug,
        "model": model_version.key,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "sample": sample,
        "sample_text": sample_text(sample=sample, model_version=model_version),
        "report": jsonable(report),
    }
    return api.create_response(request, body, status=200)
