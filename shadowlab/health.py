"""Liveness and readiness probes."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
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


def _metrics_token_given(request: HttpRequest, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@require_GET
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus metrics: requests, scoring counters and histograms, backlog.

    Only for a scraper that sends `Authorization: Bearer <SHADOWLAB_METRICS_TOKEN>`; without
    that setting the endpoint does not exist (404), so a fresh install exposes nothing.
    """
    token = settings.SHADOWLAB_METRICS_TOKEN
    if not token:
        raise Http404("metrics are off: set SHADOWLAB_METRICS_TOKEN")
    if not _metrics_token_given(request, token):
        response = HttpResponse("a valid metrics bearer token is needed\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response

    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from deployments.metrics import registry_for_export

    return HttpResponse(generate_latest(registry_for_export()), content_type=CONTENT_TYPE_LATEST)


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """The database and the broker answer: this web process can serve pages and take items.

    Workers are not asked: while they are down pages still work and intake still stores
    items (the sweeper scores them later), so a load balancer must keep sending traffic.
    """
    checks: dict[str, dict[str, object]] = {}
    problem = _database()
    checks["database"] = {"ok": problem is None, "error": problem}
    problem = _broker()
    checks["broker"] = {"ok": problem is None, "error": problem}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse({"ready": ready, "checks": checks}, status=200 if ready else 503)


@require_GET
@never_cache
def workers(request: HttpRequest) -> JsonResponse:
    """At least one Celery worker answers a ping through the broker (for monitoring)."""
    problem = _broker()
    names, problem = _workers() if problem is None else ([], f"broker unavailable: {problem}")
    ok = problem is None
    return JsonResponse({"ok": ok, "workers": names, "error": problem}, status=200 if ok else 503)
