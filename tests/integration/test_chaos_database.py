"""PostgreSQL connections cut while tasks and page requests run (R6): retried, nothing lost."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable

import numpy as np
import psycopg
import pytest
from django.db import connection, connections
from django.test import Client

from deployments.models import Prediction
from deployments.tasks import sweep_unscored
from inspections.models import Item

from .chaos import duplicate_predictions, every_item_scored, postgresql_only, unscored_items
from .conftest import wait_until
from .servers import ApiClient

pytestmark = [
    pytest.mark.integration,
    pytest.mark.chaos,
    pytest.mark.django_db(transaction=True),
    postgresql_only,
]

SINGLE = "/api/v1/queues/digits/items"
CHAOS_SECONDS = 7
CUT_EVERY = 0.5  # seconds between two rounds of terminated connections


class Cutter:
    """Terminates every other backend of the test database, and only of it, every CUT_EVERY s."""

    def __init__(self) -> None:
        settings_dict = connection.settings_dict
        self.database = settings_dict["NAME"]
        self.conninfo = psycopg.conninfo.make_conninfo(
            dbname=self.database,
            user=settings_dict.get("USER") or "",
            password=settings_dict.get("PASSWORD") or "",
            host=settings_dict.get("HOST") or "127.0.0.1",
            port=str(settings_dict.get("PORT") or 5432),
        )
        self.terminated = 0
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cutter", daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self._stop.wait(CUT_EVERY):
                row = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    [self.database],
                ).fetchone()
                self.terminated += int(row[0]) if row else 0
                self.rounds += 1

    def start(self) -> Cutter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Traffic:
    """Threads that each repeat one kind of request against the web server and tally answers."""

    def __init__(self) -> None:
        self.statuses: dict[str, Counter[int]] = {}
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def add(
        self,
        name: str,
        client: ApiClient,
        request: Callable[[ApiClient], int],
        *,
        pause: float = 0.05,
    ) -> None:
        self.statuses[name] = Counter()

        def run() -> None:
            try:
                while not self._stop.is_set():
                    self.statuses[name][request(client)] += 1
                    self._stop.wait(pause)
            except BaseException as exc:  # reported by stop()
                self.errors.append(exc)
            finally:
                client.close()

        self._threads.append(threading.Thread(target=run, name=name, daemon=True))

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not self.errors, self.errors

    def answers(self, status: int) -> int:
        return sum(counts[status] for counts in self.statuses.values())


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def _page_client(port: int, user) -> ApiClient:
    client = ApiClient(port, token="")
    client.headers = {"Cookie": _session_cookie(user)}
    return client


PAGES = {
    "inspector": ["/inspect/digits/", "/inspect/history/"],
    "lead": [
        "/overview/",
        "/overview/digits/agreement/",
        "/overview/digits/drift/",
        "/models/digits-mlp:1/",
    ],
}


def _items(rows: np.ndarray, prefix: str, start: int, count: int) -> list[dict[str, object]]:
    return [
        {
            "external_id": f"{prefix}-{start + n}",
            "features": rows[(start + n) % len(rows)].astype(float).tolist(),
        }
        for n in range(count)
    ]


def _one(rows: np.ndarray, index: int) -> dict[str, object]:
    return _items(rows, "one", index, 1)[0]


def test_cut_database_connections_are_retried_and_leave_no_failure_behind(
    worker, web_server, shadow_model, api_token, digit_rows, inspector, ml_lead, settings, figure
):
    worker.start()
    web = web_server(broker_url=settings.CELERY_BROKER_URL)
    counter = itertools.count()
    traffic = Traffic()
    for n in range(2):
        traffic.add(
            f"single POST {n}",
            ApiClient(web.port, api_token),
            lambda c: c.request("POST", SINGLE, _one(digit_rows, next(counter))).status,
        )
    traffic.add(
        "batch POST",
        ApiClient(web.port, api_token),
        lambda c: (
            c.request(
                "POST",
                "/api/v1/queues/digits/items:batch",
                {"items": _items(digit_rows, "many", 100_000 + 100 * next(counter), 100)},
            ).status
        ),
        pause=0.3,
    )
    for role, user in (("inspector", inspector), ("lead", ml_lead)):
        pages = itertools.cycle(PAGES[role])
        traffic.add(
            f"{role} pages",
            _page_client(web.port, user),
            lambda c, pages=pages: c.request("GET", next(pages)).status,
        )
    connections.close_all()  # the test's own connection is cut too; it reconnects afterwards

    traffic.start()
    time.sleep(1)
    cutter = Cutter().start()
    time.sleep(CHAOS_SECONDS)
    cutter.stop()
    time.sleep(1)
    traffic.stop()
    connections.close_all()

    # Afterwards every page and operation answers: no process kept a dead connection.
    after: dict[str, int] = {}
    for role, user in (("inspector", inspector), ("lead", ml_lead)):
        client = _page_client(web.port, user)
        for page in PAGES[role]:
            after[page] = client.request("GET", page).status
    api = ApiClient(web.port, api_token)
    after["POST item"] = api.request("POST", SINGLE, _items(digit_rows, "after", 0, 1)[0]).status
    assert set(after.values()) <= {200, 201}, after

    last_sweep = 0.0

    def scored() -> bool:
        nonlocal last_sweep
        if every_item_scored([shadow_model])():
            return True
        if time.monotonic() - last_sweep >= 3:
            sweep_unscored.delay()
            last_sweep = time.monotonic()
        return False

    wait_until(
        scored,
        timeout=60,
        message=f"{unscored_items(shadow_model)} unscored\n{worker.log()[-3000:]}",
    )
    requests = sum(sum(counts.values()) for counts in traffic.statuses.values())
    figure("connections terminated", f"{cutter.terminated} in {cutter.rounds} rounds")
    figure("requests during the cuts", requests)
    figure("500 answers during the cuts", traffic.answers(500))
    figure("503 answers (Retry-After) during the cuts", traffic.answers(503))
    figure("pages run again on a new connection", web.log().count(": run again, attempt"))
    figure("answers by kind", {name: dict(c) for name, c in traffic.statuses.items()})
    figure("task retries after a cut", worker.log().count("retry: Retry in"))
    scored = Prediction.objects.filter(model_version=shadow_model, status="ok").count()
    figure("items scored", f"{scored} of {Item.objects.count()}")
    figure("error predictions", Prediction.objects.filter(status="error").count())
    assert cutter.terminated > 0
    # A page that only reads is run again; anything else answers 503 with Retry-After.
    assert traffic.answers(500) == 0, traffic.statuses
    assert not Prediction.objects.filter(status="error").exists()
    assert duplicate_predictions() == 0
