"""Liveness and readiness probes."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from shadowlab.celery import app as celery_app


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving."""
    return JsonResponse({"status": "ok"})


def _database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _broker() -> str | None:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _workers() -> tuple[list[str], str | None]:
    try:
        replies = celery_app.control.ping(timeout=1.0) or []
    except Exception as exc:
        return [], f"{type(exc).__name__}: {exc}"
    names = sorted(name for reply in replies for name in reply)
    return names, None if names else "no worker answered within 1 s"


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: requests, scoring counters and histograms, backlog."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from deployments.metrics import registry_for_export

    return HttpResponse(generate_latest(registry_for_export()), content_type=CONTENT_TYPE_LATEST)


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """The database and broker answer and at least one worker responds to a ping."""
    checks: dict[str, dict[str, object]] = {}
    problem = _database()
    checks["database"] = {"ok": problem is None, "error": problem}
    problem = _broker()
    checks["broker"] = {"ok": problem is None, "error": problem}
    workers, problem = _workers() if problem is None else ([], "broker unavailable")
    checks["workers"] = {"ok": problem is None, "error": problem, "names": workers}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)
