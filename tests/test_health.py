"""Liveness and readiness probes, with the broker and workers replaced by stand-ins."""

from __future__ import annotations

from unittest import mock

import pytest
from kombu.exceptions import OperationalError

from shadowlab.celery import app as celery_app

pytestmark = pytest.mark.django_db


def _broker_answering() -> mock.MagicMock:
    connection = mock.MagicMock(name="broker connection")
    connection.__enter__.return_value = connection
    return connection


def _broker_refusing() -> mock.MagicMock:
    connection = _broker_answering()
    connection.ensure_connection.side_effect = OperationalError("[Errno 111] Connection refused")
    return connection


@pytest.fixture
def broker():
    with mock.patch.object(
        celery_app, "connection_for_write", return_value=_broker_answering()
    ) as patched:
        yield patched


def test_healthz_answers_200_without_touching_the_broker(client):
    with mock.patch.object(celery_app, "connection_for_write") as connect:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    connect.assert_not_called()


def test_readyz_is_200_when_the_database_and_broker_answer_without_asking_workers(client, broker):
    with mock.patch.object(celery_app.control, "ping") as ping:
        response = client.get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["ready"] is True
    assert body["checks"] == {
        "database": {"ok": True, "error": None},
        "broker": {"ok": True, "error": None},
    }
    assert "no-cache" in response["Cache-Control"]
    ping.assert_not_called()


def test_readyz_stays_200_while_no_worker_answers(client, broker):
    # Pages and intake work without workers: the web must stay in the load balancer.
    with mock.patch.object(celery_app.control, "ping", return_value=[]):
        assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_broker_is_unreachable(client):
    with mock.patch.object(celery_app, "connection_for_write", return_value=_broker_refusing()):
        response = client.get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"]["ok"] is True
    assert checks["broker"] == {
        "ok": False,
        "error": "OperationalError: [Errno 111] Connection refused",
    }


def test_worker_health_is_200_naming_the_workers_that_answer(client, broker):
    with mock.patch.object(
        celery_app.control, "ping", return_value=[{"celery@worker-1": {"ok": "pong"}}]
    ):
        response = client.get("/readyz/workers")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "workers": ["celery@worker-1"], "error": None}
    assert "no-cache" in response["Cache-Control"]


def test_worker_health_is_503_saying_so_when_no_worker_answers(client, broker):
    with mock.patch.object(celery_app.control, "ping", return_value=[]) as ping:
        response = client.get("/readyz/workers")

    assert response.status_code == 503
    assert response.json() == {
        "ok": False,
        "workers": [],
        "error": "no worker answered within 1 s",
    }
    ping.assert_called_once()


def test_worker_health_is_503_naming_the_error_when_the_ping_itself_fails(client, broker):
    with mock.patch.object(celery_app.control, "ping", side_effect=TimeoutError("timed out")):
        response = client.get("/readyz/workers")

    assert response.status_code == 503
    assert response.json()["error"] == "TimeoutError: timed out"


def test_worker_health_does_not_ping_through_an_unreachable_broker(client):
    with (
        mock.patch.object(celery_app, "connection_for_write", return_value=_broker_refusing()),
        mock.patch.object(celery_app.control, "ping") as ping,
    ):
        response = client.get("/readyz/workers")

    assert response.status_code == 503
    assert response.json()["error"].startswith("broker unavailable: OperationalError")
    ping.assert_not_called()


def test_readyz_is_503_when_the_database_fails(client, broker):
    with mock.patch("shadowlab.health.connection") as connection:
        connection.cursor.side_effect = RuntimeError("database is locked")
        response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {
        "ok": False,
        "error": "RuntimeError: database is locked",
    }


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/readyz/workers", "/metrics"])
def test_probes_answer_only_get(client, path):
    assert client.post(path).status_code == 405
