"""The whole authorization matrix, generated from the URL configuration and the API schema.

The expected answers are the tables of tests/test_permissions.py (every list there whose
name ends in MATRIX): a row per page, htmx fragment, export and API operation, a column
per caller. This module

- fails for any URL pattern (Django's own admin aside, by one prefix rule) or API operation
  that no row covers, so a new URL cannot be missed, and for rows that match no URL;
- sends every cell the tables forbid once more, with every kind of API token added as a
  caller (a token of the queue, of another queue, a revoked one, an expired one), and counts
  the cells where a forbidden caller was let in: there must be none;
- walks every URL as an inspector and checks that no answer carries a model's output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

import tests.test_permissions as tables
from shadowlab.api import api
from tests.callers import TOKEN_KINDS, token_secret

pytestmark = [pytest.mark.django_db, pytest.mark.security]

# Django's admin checks staff status and model permissions itself; its one row (/admin/)
# checks that only staff reach it. Everything else needs a row.
DJANGO_ADMIN_PREFIX = "admin/"
# Probes for load balancers and Prometheus answer whoever asks, the same to everyone: what
# they answer depends on the stack, not on the caller.
PROBES = ["readyz", "readyz/workers", "metrics"]
SESSION_ROLES = tables.ROLES
CALLERS = (*SESSION_ROLES, *TOKEN_KINDS)
LOGIN_PAGES = ("/accounts/login/", "/admin/login/")


@dataclass(frozen=True)
class Row:
    table: str
    method: str
    path: str
    body: dict[str, Any] | None
    cells: dict[str, Any]  # caller -> expected answer (a status or a tables.Redirect)


def _table_rows() -> Iterator[Row]:
    for name, table in vars(tables).items():
        if not name.endswith("MATRIX") or not isinstance(table, list):
            continue
        callers = tables.INTAKE_ROLES if name == "INTAKE_API_MATRIX" else SESSION_ROLES
        for method, path, *rest in table:
            body = None
            if rest and (rest[0] is None or isinstance(rest[0], dict)):
                body, *rest = rest
            assert len(rest) == len(callers), f"{name} {method} {path}: one answer per caller"
            yield Row(name, method, path, body, dict(zip(callers, rest, strict=True)))


ROWS = list(_table_rows())


def _plain(path: str) -> str:
    """Return the row's path with its placeholders filled in and without its query."""
    return re.sub(r"\{\w+\}", "1", urlsplit(path).path)


def _url_routes(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from _url_routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _api_operations() -> list[tuple[str, str]]:
    paths = api.get_openapi_schema()["paths"]
    return sorted((method.upper(), path) for path, methods in paths.items() for method in methods)


def _template_matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


# Coverage: generated from the URL configuration and the API schema


def _route_coverage() -> tuple[list[str], list[str], list[str]]:
    """Return the routes outside Django's admin, the stale rows, the routes without a row."""
    routes = sorted(r for r in set(_url_routes()) if not r.startswith(DJANGO_ADMIN_PREFIX))
    covered = set(PROBES)
    stale = []
    for row in ROWS:
        try:
            covered.add(resolve(_plain(row.path)).route)
        except Resolver404:
            stale.append(f"{row.table}: {row.method} {row.path}")
    return routes, stale, [route for route in routes if route not in covered]


def test_every_url_pattern_has_rows_in_the_permission_tables(figure):
    routes, stale, missing = _route_coverage()

    assert not stale, "rows that match no URL:\n" + "\n".join(stale)
    assert not missing, (
        "URL patterns with no row in tests/test_permissions.py (add one per method it takes, "
        "with the answer each caller must get):\n" + "\n".join(missing)
    )
    figure("URL patterns outside Django's admin", len(routes))
    figure("URL patterns without a row", len(missing))


def test_every_api_operation_has_rows_in_the_permission_tables(figure):
    operations = _api_operations()
    missing = [
        f"{method} {template}"
        for method, template in operations
        if not any(
            row.method == method and _template_matches(template, _plain(row.path)) for row in ROWS
        )
    ]
    assert not missing, "API operations with no row in tests/test_permissions.py:\n" + "\n".join(
        missing
    )
    figure("API operations", len(operations))
    figure("API operations without a row", len(missing))


def test_the_coverage_check_notices_a_url_without_a_row(settings):
    """The check above is not vacuous: a URL added to the configuration is reported."""
    from django.urls import path

    import shadowlab.urls

    def unlisted(request):  # pragma: no cover - never requested
        raise AssertionError

    patterns = [*shadowlab.urls.urlpatterns, path("unlisted/<int:n>/", unlisted)]
    settings.ROOT_URLCONF = type("urls", (), {"urlpatterns": patterns})

    assert _route_coverage()[2] == ["unlisted/<int:n>/"]


# Every forbidden cell, and every token, against the running views


def _forbidden(expected: Any) -> bool:
    """Whether the cell says this caller must be kept out (not merely sent an error)."""
    if isinstance(expected, tables.Redirect):
        return expected in (tables.LOGIN, tables.ADMIN_LOGIN)
    return expected in (401, 403, 405)


def _let_in(response: Any) -> bool:
    """Whether the answer gave the caller anything: not a refusal, not a way to sign in.

    A 400 counts: validating a forbidden caller's input is already serving them.
    """
    if response.status_code in (401, 403, 404, 405):
        return False
    if response.status_code == 302:
        return not response["Location"].startswith(LOGIN_PAGES)
    return True


def _as_expected(expected: Any, response: Any) -> bool:
    if isinstance(expected, tables.Redirect):
        return response.status_code == 302 and response["Location"].startswith(expected.to)
    return response.status_code == expected


def _expected_for_token(row: Row, kind: str) -> Any:
    """A token opens only what its table lists it for; anywhere else it is no one."""
    return row.cells.get(kind, row.cells["anonymous"])


@pytest.fixture
def world(request, queue, other_queue, inspector, admin_user) -> dict[str, Any]:
    """Objects the tables' placeholders name, and a client per caller."""
    from django.contrib.auth.models import User

    from analytics.gate.evaluation import gate_evaluation_run
    from deployments.models import PromotionRequest
    from inspections.services import api_token_create, item_assign_next, item_create
    from tests.deployments.rollout_factories import deployment_make, evaluation_make, version_make

    item = item_create(queue=queue, external_id="waiting", features=[0.0] * 64)
    item_assign_next(queue=queue, inspector=inspector)
    gate_evaluation_run(model_version=version_make(queue, "1", name="m"), actor=None)
    live, candidate, awaiting = (version_make(queue, v) for v in ("1", "2", "3"))
    deployment_make(live, "live")
    deployment_make(candidate, "shadow")
    deployment_make(awaiting, "shadow")
    pending = PromotionRequest.objects.create(
        queue=queue,
        model_version=awaiting,
        target="canary",
        share=0.05,
        evaluation=evaluation_make(awaiting),
        requested_by=User.objects.create_user("another-lead"),
    )
    ids = {
        "item": item.pk,
        "evaluation": evaluation_make(candidate).pk,
        "request": pending.pk,
        "token": api_token_create(queue=queue, name="listed")[0].pk,
        "queue": queue.pk,
    }
    clients: dict[str, Client] = {}
    for role in SESSION_ROLES:
        clients[role] = Client()
        if role != "anonymous":
            clients[role].force_login(request.getfixturevalue(role))
    for kind in TOKEN_KINDS:
        raw = token_secret(kind, queue=queue, other_queue=other_queue, admin=admin_user)
        clients[kind] = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return {"ids": ids, "clients": clients}


# Sent as well as the table's body to a forbidden caller of an API write: the refusal must
# come before the body is read, so that it tells the caller nothing about what it should be.
UNREAD_BODY = "not even JSON"


def _bodies(row: Row) -> list[Any]:
    if row.method == "GET" or not row.path.startswith("/api/v1/"):
        return [row.body]
    return [row.body, UNREAD_BODY]


def _send(client: Client, row: Row, ids: dict[str, int], body: Any) -> Any:
    url = row.path.format(**ids)
    if isinstance(body, dict):
        body = {
            name: ids[value[1:-1]] if isinstance(value, str) and value[1:-1] in ids else value
            for name, value in body.items()
        }
    if row.method == "GET":
        return client.get(url)
    if url.startswith("/api/v1/"):
        data = body if isinstance(body, str) else json.dumps(body or {})
        return client.generic(row.method, url, data, content_type="application/json")
    if row.method == "POST":
        return client.post(url, body or {})
    return client.generic(row.method, url)


def test_no_caller_is_let_into_a_cell_the_tables_forbid(world, figure):
    checked, let_in, otherwise = 0, [], []
    for row in ROWS:
        for caller in CALLERS:
            if caller in row.cells:
                expected = row.cells[caller]
                if not _forbidden(expected):
                    continue  # an allowed cell: tests/test_permissions.py checks it with its data
            else:
                expected = _expected_for_token(row, caller)
            for body in _bodies(row) if _forbidden(expected) else [row.body]:
                with transaction.atomic():
                    response = _send(world["clients"][caller], row, world["ids"], body)
                    transaction.set_rollback(True)  # whatever happened, the next cell is afresh
                checked += 1
                where = f"{caller}: {row.method} {row.path} -> {response.status_code}"
                if body == UNREAD_BODY:
                    where += " (with a body that is not JSON)"
                if _forbidden(expected) and _let_in(response):
                    let_in.append(where)
                elif not _as_expected(expected, response):
                    otherwise.append(f"{where}, expected {expected}")

    figure("forbidden and token cells checked", checked)
    figure("forbidden but allowed cells", len(let_in))
    assert not let_in, "let in where the tables forbid:\n" + "\n".join(let_in)
    assert not otherwise, "answers other than the tables say:\n" + "\n".join(otherwise)
    assert checked >= len(ROWS) * len(TOKEN_KINDS)  # every row, at least with every token


@pytest.mark.parametrize("probe", PROBES)
def test_a_probe_answers_every_caller_alike(world, probe):
    answers = {}
    for caller in CALLERS:
        response = world["clients"][caller].get(f"/{probe}")
        answers[caller] = response.status_code
    assert len(set(answers.values())) == 1, answers


def test_a_token_with_a_session_gets_no_more_than_the_session(world, client_for, inspector):
    """A signed-in inspector who also sends a queue's token is still only an inspector."""
    raw_client = world["clients"]["digits_token"]
    client = client_for(inspector)
    client.defaults["HTTP_AUTHORIZATION"] = raw_client.defaults["HTTP_AUTHORIZATION"]
    for path in ("/overview/", "/rollout/", "/audit/", "/tokens/", "/api/openapi.json"):
        assert client.get(path).status_code == 403, path
    assert client.get("/api/v1/queues/digits/rollout").status_code == 403


# Inspectors never receive model output: every URL, as an inspector


BLIND_LABELS = ["pass-amber", "fail-cobalt", "hold-magenta"]
PREDICTED, CHOSEN, NOBODYS = "fail-cobalt", "pass-amber", "hold-magenta"
# Each item's shadow prediction says PREDICTED, with probabilities found nowhere else.
PROBABILITIES = {
    "judged": [0.1044744, 0.5772157, 0.3183099],
    "on-screen": [0.2718282, 0.6180340, 0.1101378],
    "audited": [0.0314159, 0.8414710, 0.1271131],
}
DECISION_CONFIDENCE = 0.9135791  # the live version's, on the audit sample


@pytest.fixture
def blind_world(inspector, admin_user) -> dict[str, Any]:
    """A queue whose shadow and live versions scored every item, one judged against them."""
    from django.utils import timezone

    from deployments.models import Decision, Prediction
    from inspections.models import Item
    from inspections.services import (
        api_token_create,
        item_assign_next,
        item_create,
        judgment_record,
        queue_create,
    )
    from tests.deployments.rollout_factories import deployment_make, version_make

    queue = queue_create(
        name="Blind", slug="blind", labels=BLIND_LABELS, input_width=3, double_inspection_rate=0
    )
    shadow = version_make(queue, "1", name="blind-net")
    live = version_make(queue, "2", name="blind-net")
    items = {}
    for name, probabilities in PROBABILITIES.items():
        item = item_create(queue=queue, external_id=name, features=[0.5, 0.25, 0.125])
        Prediction.objects.create(
            item=item,
            model_version=shadow,
            status=Prediction.Status.OK,
            label=PREDICTED,
            probabilities=probabilities,
            confidence=max(probabilities),
            latency_ms=1.0,
            backend="fp32",
        )
        items[name] = item
    judged = item_assign_next(queue=queue, inspector=inspector)
    assert judged == items["judged"]
    judgment_record(item=judged, inspector=inspector, label=CHOSEN, seconds_spent=3.0)
    # Deployed after the items arrived, so that they were routed to inspectors.
    deployment_make(shadow, "shadow")
    deployment_make(live, "live")
    audited = items["audited"]
    Item.objects.filter(pk=audited.pk).update(route=Item.Route.MODEL, audit_sample=True)
    Decision.objects.create(
        item=audited,
        model_version=live,
        role=Decision.Role.LIVE,
        outcome=Decision.Outcome.DECIDED,
        label=PREDICTED,
        confidence=DECISION_CONFIDENCE,
        latency_ms=2.0,
        created_at=timezone.now(),
    )
    token = api_token_create(queue=queue, name="blind", created_by=admin_user)[0]
    return {
        "queue": queue,
        "items": [item.pk for item in items.values()],
        "values": {
            "slug": ["blind"],
            "kind": list(tables.REPORT_KINDS),
            "key": [shadow.key],
            "item_id": [item.pk for item in items.values()],
            "request_id": [1],
            "evaluation_id": [1],
            "token_id": [token.pk],
            "uidb64": ["MQ"],
            "token": ["set-password"],
        },
        "figures": [
            *(p for probabilities in PROBABILITIES.values() for p in probabilities),
            DECISION_CONFIDENCE,
        ],
    }


def _concrete_urls(values: dict[str, list[Any]]) -> Iterator[str]:
    """Yield every URL of the configuration with its parameters filled in every way given."""
    import itertools

    for route in sorted(set(_url_routes())):
        if route.startswith(DJANGO_ADMIN_PREFIX):
            continue
        names = re.findall(r"<(?:\w+:)?(\w+)>", route)
        unknown = [name for name in names if name not in values]
        assert not unknown, f"no value to try for {unknown} of {route}: add one to blind_world"
        for chosen in itertools.product(*(values[name] for name in names)):
            url = route
            for name, value in zip(names, chosen, strict=True):
                url = re.sub(rf"<(?:\w+:)?{name}>", str(value), url, count=1)
            yield "/" + url
    yield "/admin/"


def _everything_sent(response: Any) -> str:
    """Return the headers and the body, streamed (CSV exports) or not."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.items())
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return f"{headers}\n\n{body.decode(errors='replace')}"


def test_an_inspector_receives_no_model_output_from_any_url(
    blind_world, client_for, inspector, ml_lead, figure
):
    from tests.inspections.test_blinding import FORBIDDEN_WORDS, _number_shown, _ways_to_show

    client = client_for(inspector)
    shown = {text for figure_ in blind_world["figures"] for text in _ways_to_show(figure_)}
    query = f"?model={blind_world['values']['key'][0]}"
    form = {"item_id": blind_world["items"][0], "label": CHOSEN}
    # The figures looked for are ones the app does print: an ml_lead's page shows them.
    lead = client_for(ml_lead).get(f"/overview/blind/disagreements/{query}").content.decode()
    assert any(_number_shown(lead, text) for text in shown)
    assert lead.count(PREDICTED) > lead.count(NOBODYS)
    sent, leaks, statuses, served = 0, [], set(), {}
    for url in _concrete_urls(blind_world["values"]):
        attempts = [("GET", {}), ("GET", {"HTTP_HX_REQUEST": "true"})]
        if url != "/accounts/logout/":  # would sign the inspector out of the rest of the walk
            attempts.append(("POST", {"HTTP_HX_REQUEST": "true"}))
        for method, headers in attempts:
            if method == "GET":
                response = client.get(url + query, **headers)
            elif url.startswith("/api/v1/"):
                response = client.post(url, "{}", content_type="application/json", **headers)
            else:
                response = client.post(url + query, form, **headers)
            sent += 1
            statuses.add(response.status_code)
            text = _everything_sent(response)
            if method == "GET" and not headers and response.status_code == 200:
                served[url] = text
            where = f"{method} {url} ({response.status_code})"
            for figure_text in shown:
                if _number_shown(text, figure_text):
                    leaks.append(f"{where} shows {figure_text}")
            # Pages served to the inspector do not even talk about models; refusals may name
            # what was refused, and the probes' counters are operational (no item's output).
            if response.status_code < 300 and url.strip("/") not in PROBES:
                for word in FORBIDDEN_WORDS:
                    if word in text.lower():
                        leaks.append(f"{where} mentions {word!r}")
            # The predicted label is on the inspect screen only as one of the queue's labels,
            # as often as the label nobody chose or predicted.
            if text.count(PREDICTED) != text.count(NOBODYS):
                leaks.append(f"{where} singles out the predicted label")

    figure("requests an inspector sent, every URL and method", sent)
    figure("answers carrying model output", len(leaks))
    assert not leaks, "\n".join(leaks)
    # The walk reached the inspector's own pages with their items, not only refusals.
    assert 403 in statuses
    screen = served["/inspect/blind/"]
    assert all(f'value="{label}"' in screen for label in BLIND_LABELS)
    assert any(name in screen for name in PROBABILITIES)
    assert "judged" in served["/inspect/history/"]
