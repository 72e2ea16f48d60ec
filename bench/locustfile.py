"""Locust users of bench/load.py: inspectors judging through the inspect screen, and API
clients submitting items and reading their decisions. Run through bench/load.py, which
starts the stack and passes the credentials in the environment."""

from __future__ import annotations

import itertools
import json
import os
import random
import re

from locust import HttpUser, between, constant_throughput, task

ITEM_ID = re.compile(r'name="item_id" value="(\d+)"')
SLUG = os.environ.get("LOAD_QUEUE", "digits")
PASSWORD = os.environ.get("LOAD_PASSWORD", "")
TOKENS = [token for token in os.environ.get("LOAD_TOKENS", "").split(",") if token]
ROWS = json.loads(os.environ.get("LOAD_ROWS", "[]"))
_inspector_numbers = itertools.count()
_token_numbers = itertools.count()


class Inspector(HttpUser):
    """Signs in, then judges the item on screen and gets the next, with a human pause."""

    fixed_count = int(os.environ.get("LOAD_INSPECTORS", "50"))
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.username = f"load-inspector-{next(_inspector_numbers)}"
        self.client.get("/accounts/login/", name="login page")
        self.client.post(
            f"/accounts/login/?next=/inspect/{SLUG}/",
            data={
                "username": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
            },
            headers={"Referer": self.host},
            name="login",
        )
        self.page = self.client.get(f"/inspect/{SLUG}/", name="inspect").text

    @task
    def judge(self) -> None:
        found = ITEM_ID.search(self.page)
        if found is None:
            self.page = self.client.get(f"/inspect/{SLUG}/", name="inspect").text
            return
        with self.client.post(
            f"/inspect/{SLUG}/judge",
            data={
                "item_id": found.group(1),
                "label": str(random.randrange(10)),
                "csrfmiddlewaretoken": self.client.cookies.get("csrftoken", ""),
            },
            headers={"HX-Request": "true", "Referer": self.host},
            name="judge",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                refusal = re.search(
                    r'class="[^"]*(?:notice|error)[^"]*"[^>]*>([^<]+)', response.text
                )
                why = refusal.group(1).strip() if refusal else response.text[:120]
                response.failure(f"judge answered {response.status_code}: {why}")
            self.page = response.text


class ApiClient(HttpUser):
    """Submits items with its queue token and reads back the decision of some."""

    fixed_count = int(os.environ.get("LOAD_API_CLIENTS", "5"))
    wait_time = constant_throughput(float(os.environ.get("LOAD_API_RATE", "4")))

    def on_start(self) -> None:
        self.token = TOKENS[next(_token_numbers) % len(TOKENS)]
        self.sent: list[int] = []
        self.number = itertools.count()

    @task(4)
    def submit(self) -> None:
        row = random.choice(ROWS)
        with self.client.post(
            f"/api/v1/queues/{SLUG}/items",
            json={"external_id": f"load-{self.token[-6:]}-{next(self.number)}", "features": row},
            headers={"Authorization": f"Bearer {self.token}"},
            name="api: submit item",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"intake answered {response.status_code}: {response.text[:200]}")
                return
            self.sent.append(response.json()["id"])

    @task(1)
    def read(self) -> None:
        if not self.sent:
            return
        self.client.get(
            f"/api/v1/items/{random.choice(self.sent[-200:])}",
            headers={"Authorization": f"Bearer {self.token}"},
            name="api: read item",
        )
