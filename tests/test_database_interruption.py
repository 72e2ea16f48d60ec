"""A request whose database connection is cut under it is run again, or answered 503."""

from __future__ import annotations

import json

import psycopg
import pytest
from django.db import connection
from django.db.utils import OperationalError
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import ResolverMatch

from shadowlab.api import database_interrupted
from shadowlab.database_interruption import (
    DatabaseInterruptionMiddleware,
    database_connection_lost,
)

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="cuts a PostgreSQL connection"
)


@pytest.fixture(autouse=True)
def _reconnect_afterwards():
    # The test database is emptied after each test, on a connection that must be alive.
    yield
    connection.close()


def _cut_own_connection() -> None:
    """Terminate this test's backend from another connection, as an administrator would."""
    connection.ensure_connection()
    backend = connection.connection.info.backend_pid
    settings = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=settings["NAME"],
        user=settings.get("USER") or "",
        password=settings.get("PASSWORD") or "",
        host=settings.get("HOST") or "127.0.0.1",
        port=str(settings.get("PORT") or 5432),
    )
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [backend])


def _query() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


def _lost_connection_error() -> OperationalError:
    _cut_own_connection()
    try:
        _query()
    except OperationalError as exc:
        return exc
    raise AssertionError("the query on a cut connection worked")


class FlakyView:
    """A view whose connection is cut during its first run only."""

    def __init__(self) -> None:
        self.runs = 0

    def __call__(self, request) -> HttpResponse:
        self.runs += 1
        if self.runs == 1:
            _cut_own_connection()
        return HttpResponse(str(_query()))


def _request(method: str, view: FlakyView):
    request = getattr(RequestFactory(), method.lower())("/somewhere/")
    request.resolver_match = ResolverMatch(view, (), {})
    return request


@postgresql_only
def test_a_terminated_connection_is_lost_and_a_failed_statement_is_not():
    assert database_connection_lost(_lost_connection_error())
    connection.close()
    with pytest.raises(Exception) as division, connection.cursor() as cursor:
        cursor.execute("SELECT 1/0")
    assert not database_connection_lost(division.value)


@postgresql_only
def test_a_page_that_only_reads_is_run_again_on_a_new_connection():
    view = FlakyView()
    request = _request("GET", view)
    middleware = DatabaseInterruptionMiddleware(lambda r: HttpResponse())
    with pytest.raises(OperationalError) as cut:
        view(request)
    response = middleware.process_exception(request, cut.value)
    assert response is not None and response.status_code == 200
    assert view.runs == 2


@postgresql_only
def test_a_post_whose_connection_is_cut_answers_503_with_retry_after():
    view = FlakyView()
    request = _request("POST", view)
    middleware = DatabaseInterruptionMiddleware(lambda r: HttpResponse())
    with pytest.raises(OperationalError) as cut:
        view(request)
    response = middleware.process_exception(request, cut.value)
    assert response is not None and response.status_code == 503
    assert response["Retry-After"] == "1"
    assert view.runs == 1


@postgresql_only
def test_an_api_call_whose_connection_is_cut_answers_503_asking_to_send_it_again():
    request = RequestFactory().post("/api/v1/queues/digits/items")
    response = database_interrupted(request, _lost_connection_error())
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "send it again" in json.loads(response.content)["detail"]


def test_other_errors_are_left_to_the_usual_500():
    request = _request("GET", FlakyView())
    middleware = DatabaseInterruptionMiddleware(lambda r: HttpResponse())
    assert middleware.process_exception(request, ValueError("not the database")) is None
    assert middleware.process_exception(request, OperationalError("database is locked")) is None
