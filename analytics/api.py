"""JSON of every analytics report, for ml_leads and admins with a browser session."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from analytics.selectors import (
    REPORT_KINDS,
    DisagreementFilters,
    ReportScope,
    report_build,
    report_scope_default_range,
)
from analytics.serialize import jsonable
from deployments.models import ModelVersion
from inspections.api import api
from inspections.models import Queue
from shadowlab import roles

router = Router(tags=["analytics"])


def _problem(request: HttpRequest, status: int, detail: str) -> HttpResponse:
    return api.create_response(request, {"detail": detail}, status=status)


def _day(text: str | None, name: str) -> date | None:
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{name} must be an ISO date such as 2026-01-31, got {text!r}") from exc


def _number(text: str | None, name: str, kind: type[int] | type[float]) -> Any:
    if text is None or text == "":
        return None
    try:
        return kind(text)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {text!r}") from exc


def _options(kind: str, params: Any) -> dict[str, Any]:
    if kind == "agreement":
        rule = params.get("rule", "each")
        if rule not in ("each", "consensus"):
            raise ValueError(f"rule must be 'each' or 'consensus', got {rule!r}")
        return {"rule": rule}
    if kind == "disagreements":
        page = _number(params.get("page"), "page", int)
        page = 1 if page is None else page
        page_size = _number(params.get("page_size"), "page_size", int)
        if page < 1 or (page_size is not None and not 1 <= page_size <= 500):
            raise ValueError("page must be at least 1 and page_size between 1 and 500")
        filters = DisagreementFilters(
            human_label=params.get("human_label") or None,
            model_label=params.get("model_label") or None,
            confidence_min=_number(params.get("confidence_min"), "confidence_min", float),
            confidence_max=_number(params.get("confidence_max"), "confidence_max", float),
            inspector=params.get("inspector") or None,
        )
        return {"filters": filters, "page": page, "page_size": page_size}
    return {}


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
        until = _day(request.GET.get("until"), "until")
        since = _day(request.GET.get("since"), "since")
        default_since, default_until = report_scope_default_range(until=until)
        since, until = since or default_since, until or default_until
        if since > until:
            raise ValueError(f"since ({since}) is after until ({until})")
        options = _options(kind, request.GET)
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


api.add_router("/v1/queues/", router)
