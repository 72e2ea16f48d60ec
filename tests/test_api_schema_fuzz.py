"""The API against its own OpenAPI schema: generated requests, no server error, no answer
that contradicts the schema (status, content type, body)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inspections.services import api_token_create, item_create
from shadowlab.urls import api

pytestmark = [pytest.mark.fuzz, pytest.mark.django_db]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Per operation; twenty operations, two callers: about 1,600 requests in all.
EXAMPLES = 30


def _operations() -> Iterator[Any]:
    schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/"))
    for result in schema.get_all_operations():
        # A schema the API itself cannot describe fails here, loudly, at collection.
        if isinstance(result, Err):
            raise result.err()
        yield result.ok()


OPERATIONS = list(_operations())


def _session_cookies(user) -> dict[str, str]:
    client = Client()
    client.force_login(user)
    return {name: morsel.value for name, morsel in client.cookies.items()}


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """The project's WSGI application, inside the test's transaction as Django's test client."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def known_values(queue, shadow_model, api_token, digit_rows) -> dict[str, str]:
    """Values that reach past the lookups: the queue's slug, a real item and model."""
    item = item_create(queue=queue, features=digit_rows[0].tolist(), external_id="fuzz-0")
    return {
        "slug": queue.slug,
        "item_id": str(item.pk),
        "kind": "agreement",
        "model": shadow_model.key,
    }


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
@pytest.mark.parametrize("caller", ["token", "session"])
def test_every_operation_answers_within_its_schema_and_never_with_a_server_error(
    operation, caller, admin_user, known_values, api_token, wsgi_app, figure
):
    csrf = _get_new_csrf_string()
    if caller == "token":
        headers = {"Authorization": f"Bearer {api_token}"}
        cookies: dict[str, str] = {}
    else:
        headers = {"X-CSRFToken": csrf}
        cookies = {**_session_cookies(admin_user), "csrftoken": csrf}
    statuses: dict[int, int] = {}
    slowest = 0.0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(), existing=st.booleans())
    def exchange(case, existing: bool) -> None:
        nonlocal slowest
        # Half the time the path names things that exist, so the handlers run past the lookup.
        if existing:
            for name, value in known_values.items():
                if name in (case.path_parameters or {}):
                    case.path_parameters[name] = value
            # Reports read their model from the query string, which the schema leaves open.
            if "{kind}" in operation.path:
                case.query = {**(case.query or {}), "model": known_values["model"]}
        started = time.perf_counter()
        response = case.call(app=wsgi_app, headers=headers, cookies=cookies)
        slowest = max(slowest, time.perf_counter() - started)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    exchange()
    figure("statuses", dict(sorted(statuses.items())))
    figure("slowest answer (s)", round(slowest, 3))
    assert not any(status >= 500 for status in statuses)


def test_a_token_of_one_queue_never_reads_another_queues_item(
    queue, other_queue, digit_rows, client
):
    item = item_create(queue=queue, features=digit_rows[0].tolist(), external_id="mine")
    other_token = api_token_create(queue=other_queue, name="other")[1]

    response = client.get(
        f"/api/v1/items/{item.pk}", headers={"Authorization": f"Bearer {other_token}"}
    )

    assert response.status_code in (403, 404)
    assert "mine" not in response.content.decode()
