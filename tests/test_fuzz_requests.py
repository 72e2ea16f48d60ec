"""Random and extreme parameters to every page, export and API read: no 5xx, each fast, bounded.

The endpoints are not listed here: they are read from the URL configuration (Django's
resolvers) and from the API's OpenAPI schema, so a new page or operation is fuzzed as soon
as it exists; a path parameter this file cannot fill fails the test rather than being
skipped. The query parameters each endpoint reads are found by watching one plain request
to it, then Hypothesis sends those, the ones every list and report takes, and unknown ones,
with values from real ones to dates far in the past and future, huge integers, 10 kB
strings, NUL characters, lone surrogates, SQL and HTML. Every answer must be below 500 and
come within 5 s, and the process may grow by less than 200 MB over the run.

Hypothesis is derandomized (the same examples each run) so CI sees what a developer saw.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from unittest import mock
from urllib.parse import quote

import psutil
import pytest
from django.core.handlers import wsgi
from django.http import QueryDict
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics.registry import REPORT_KINDS
from deployments.promotions import promotion_request_create
from deployments.scoring import predictions_score
from inspections.models import ApiToken, Item
from inspections.services import item_create, judgment_record
from tests.deployments.rollout_factories import evaluation_make

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

ANSWER_SECONDS = 5.0
RSS_GROWTH_MB = 200
# Examples per endpoint: a few for one that reads no parameter, more for each it reads, so
# the pages with many filters get most of the run; the file stays well under a minute.
EXAMPLES_BASE = 4
EXAMPLES_PER_PARAM = 3
EXAMPLES_MAX = 30
BODY_EXAMPLES = 60

# Parameters every report, export or list takes, sent to each endpoint whether it reads
# them or not; the ones an endpoint reads are added per endpoint.
COMMON_PARAMS = ["since", "until", "page", "page_size", "model", "label", "inspector", "kind", "q"]
# The admin is Django's, covered by its own tests; the API is fuzzed from its schema
# instead of its resolver; /readyz answers 503 by design while no worker runs (none here).
SKIPPED_PREFIXES = ("admin/", "api/", "readyz")

HOSTILE_TEXT = [
    "",
    " ",
    "x" * 10_000,
    "a\x00b",
    "\x00",
    "\ud800",
    "\udfff\ud800",
    "' OR 1=1 --",
    "1; DROP TABLE inspections_item; --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "../../etc/passwd",
    "%00",
    "=cmd|' /C calc'!A0",
    "\N{RIGHT-TO-LEFT OVERRIDE}evil",
    "\uff11\uff12\uff13",  # full-width digits: int() reads them
    "²",  # a digit to str.isdigit(), not to int()
]
EXTREME_NUMBERS = [
    "0",
    "-1",
    "-0",
    "1.5",
    "1e9",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "999999999999999999999",
    "9" * 5000,
    str(2**63),
    str(-(2**63) - 1),
]
EXTREME_DATES = [
    "0001-01-01",
    "9999-12-31",
    "1999-12-31",
    "2000-01-01",
    "2026-02-30",
    "2026-13-01",
    "20260101",
    "2026-W05-1",
    "yesterday",
]


@dataclass
class Endpoint:
    """One GET endpoint with its path filled in, what it reads and who it lets in."""

    path: str
    params: list[str] = field(default_factory=list)
    callers: list[str] = field(default_factory=list)


@dataclass
class Tally:
    """What the run saw: every answer's time and status, and any over the limits."""

    requests: int = 0
    slowest: float = 0.0
    slowest_url: str = ""
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def record(self, url: str, status: int, seconds: float) -> None:
        self.requests += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if seconds > self.slowest:
            self.slowest, self.slowest_url = seconds, url
        if status >= 500 or seconds > ANSWER_SECONDS:
            self.failures.append(f"{status} in {seconds:.2f} s: {url[:300]}")


@dataclass(frozen=True)
class World:
    """Real rows to fill path parameters with, and a client per kind of caller."""

    path_values: dict[str, list[str]]
    clients: dict[str, Client]


@pytest.fixture
def world(client_for, ml_lead, admin_user, inspector, queue, shadow_model, api_token, digits_split):
    """A queue with a shadow model that scored and disagreed with judged items, a promotion."""
    items = [
        item_create(queue=queue, external_id=f"fuzz-{n}", features=[float(v) for v in row])
        for n, row in enumerate(digits_split.holdout_x[:12])
    ]
    predictions_score(model_version_id=shadow_model.pk, item_ids=[item.pk for item in items])
    for item, truth in zip(items, digits_split.holdout_y[:12], strict=True):
        wrong = str((int(truth) + 1) % 10)  # every item a disagreement: adjudication has work
        judgment_record(item=item, inspector=inspector, label=wrong, seconds_spent=2.0)
    evaluation = evaluation_make(shadow_model)
    request = promotion_request_create(
        queue=queue,
        model_version=shadow_model,
        target="canary",
        share=0.05,
        evaluation=evaluation,
        actor=ml_lead,
    )
    disagreement = Item.objects.filter(queue=queue).order_by("pk").first()
    assert disagreement is not None
    clients = {
        "ml_lead": client_for(ml_lead),
        "admin": client_for(admin_user),
        "token": Client(HTTP_AUTHORIZATION=f"Bearer {api_token}"),
    }
    for client in clients.values():
        # A 500 is an answer to count and report with its URL, not an exception to stop at.
        client.raise_request_exception = False
    return World(
        path_values={
            "slug": [queue.slug],
            "kind": list(REPORT_KINDS),
            "key": [shadow_model.key],
            # A real id, and one past any 64-bit key.
            "item_id": [str(disagreement.pk), "99999999999999999999"],
            "request_id": [str(request.pk), "99999999999999999999"],
            "evaluation_id": [str(evaluation.pk), "99999999999999999999"],
            "token_id": [str(ApiToken.objects.get(queue=queue).pk), "99999999999999999999"],
            # Password reset links: no such user, the page says the link is invalid.
            "uidb64": ["MQ"],
            "token": ["set-password"],
        },
        clients=clients,
    )


def _django_routes(patterns: list[URLPattern | URLResolver], prefix: str = "") -> Iterator[str]:
    """Yield the route of every URL pattern, resolvers walked into."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(SKIPPED_PREFIXES):
            continue
        if isinstance(entry, URLResolver):
            yield from _django_routes(entry.url_patterns, route)
        else:
            yield route


_PATH_PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\{(\w+)\}")


def _filled(route: str, values: dict[str, list[str]]) -> list[str]:
    """Return the route with every path parameter filled, once per value of each."""
    names = [a or b for a, b in _PATH_PARAM.findall(route)]
    missing = [name for name in names if name not in values]
    assert not missing, f"no fixture value for path parameter(s) {missing} of {route}"
    paths = [route]
    for name in names:
        paths = [
            re.sub(rf"<(?:\w+:)?{name}>|\{{{name}\}}", value, path, count=1)
            for path in paths
            for value in values[name]
        ]
    return ["/" + path.lstrip("/").replace("^", "").replace("$", "") for path in paths]


def _api_operations(client: Client) -> Iterator[tuple[str, list[str]]]:
    """Yield (path, declared query parameters) of every GET operation in the OpenAPI schema."""
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    for path, operations in response.json()["paths"].items():
        get = operations.get("get")
        if get is None:
            continue
        declared = [p["name"] for p in get.get("parameters", []) if p.get("in") == "query"]
        yield path, declared


@contextmanager
def _query_reads_recorded() -> Iterator[set[str]]:
    """Record the names views read from request.GET meanwhile (the query, nothing else)."""
    names: set[str] = set()

    class RecordingQueryDict(QueryDict):
        def get(self, key: Any, *args: Any) -> Any:
            names.add(key)
            return super().get(key, *args)

        def getlist(self, key: Any, *args: Any) -> Any:
            names.add(key)
            return super().getlist(key, *args)

        def __getitem__(self, key: Any) -> Any:
            names.add(key)
            return super().__getitem__(key)

        def __contains__(self, key: object) -> bool:
            if isinstance(key, str):
                names.add(key)
            return super().__contains__(key)

    # WSGIRequest.GET builds its QueryDict from the name in its own module.
    with mock.patch.object(wsgi, "QueryDict", RecordingQueryDict):
        yield names


def _endpoints(world: World) -> list[Endpoint]:
    """Return every GET endpoint of the URL configuration and the API schema, looked at once.

    A plain request by each caller tells who is let in (not sent to log in, 401 or 403) and
    which query parameters the view reads; form fields read on POST are not query.
    """
    endpoints = [
        Endpoint(path)
        for route in _django_routes(get_resolver().url_patterns)
        for path in _filled(route, world.path_values)
    ]
    for route, declared in _api_operations(world.clients["admin"]):
        for path in _filled(route, world.path_values):
            endpoints.append(Endpoint(path, params=declared))
    model = world.path_values["key"][0]
    for endpoint in endpoints:
        for who, client in world.clients.items():
            with _query_reads_recorded() as read:
                response = client.get(endpoint.path)
                _consume(response)
                # A version to read: a report checks it before it reads anything else.
                _consume(client.get(f"{endpoint.path}?model={model}"))
            endpoint.params = sorted({*endpoint.params, *read})
            if response.status_code not in (302, 401, 403):
                endpoint.callers.append(who)
        endpoint.callers = endpoint.callers or sorted(world.clients)
    return endpoints


def _consume(response: Any) -> int:
    """Read a whole answer, streamed ones included (their work happens while read)."""
    if response.streaming:
        return sum(len(chunk) for chunk in response.streaming_content)
    return len(response.content)


def _query(params: dict[str, str]) -> str:
    # Lone surrogates go as the bytes a careless client would send (UTF-8 of the surrogate,
    # invalid UTF-8); the server must decode them without failing.
    return "&".join(
        f"{quote(name.encode('utf-8', 'surrogatepass'), safe='')}="
        f"{quote(value.encode('utf-8', 'surrogatepass'), safe='')}"
        for name, value in params.items()
    )


REAL_VALUES = [
    "digits-mlp:1",
    "digits-mlp:9",
    "digits",
    "inspector1",
    "lead",
    "3",
    "audit",
    "all",
    "each",
    "consensus",
    "pending",
    "promotion.request",
    *REPORT_KINDS,
]
DATE_PARAMS = {"since", "until"}
NUMBER_PARAMS = {"page", "page_size", "confidence_min", "confidence_max", "evaluation"}
# Sent to every parameter an endpoint reads, each alone, whatever the random examples draw:
# the values that took the server down or to a 500 before (issue 13) and their kin.
EDGE_VALUES = {
    "date": ["0001-01-01", "9999-12-31", "2000-01-01", "yesterday"],
    "number": ["999999999999999999999", "-1", "9" * 5000, "nan", "²"],
    "text": ["a\x00b", "x" * 10_000, "\ud800", "' OR 1=1 --", "<script>alert(1)</script>"],
}

_ANY_VALUE = st.one_of(
    st.sampled_from(REAL_VALUES),
    st.sampled_from(HOSTILE_TEXT),
    st.sampled_from(EXTREME_NUMBERS),
    st.sampled_from(EXTREME_DATES),
    st.text(max_size=30),
)
_DATE_VALUE = st.one_of(
    st.sampled_from(EXTREME_DATES),
    st.dates().map(lambda day: day.isoformat()),
    st.dates(min_value=date(1999, 1, 1), max_value=date(2028, 12, 31)).map(str),
)
_NUMBER_VALUE = st.one_of(
    st.sampled_from(EXTREME_NUMBERS),
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_UNKNOWN_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


def _kind(name: str) -> str:
    return "date" if name in DATE_PARAMS else "number" if name in NUMBER_PARAMS else "text"


def _value_for(name: str) -> st.SearchStrategy[str]:
    """Return values for a parameter: mostly of its kind, sometimes anything at all."""
    own = {"date": _DATE_VALUE, "number": _NUMBER_VALUE, "text": st.sampled_from(REAL_VALUES)}
    return st.one_of(own[_kind(name)], own[_kind(name)], _ANY_VALUE)


def _base(endpoint: Endpoint, world: World) -> dict[str, str]:
    """Return the query that gets the endpoint past its first check: the model version."""
    return {"model": world.path_values["key"][0]} if "model" in endpoint.params else {}


@st.composite
def _params(draw: st.DrawFn, endpoint: Endpoint, base: dict[str, str]) -> dict[str, str]:
    """Draw a query: a few of the parameters the endpoint reads or all take, maybe unknown."""
    names = sorted({*endpoint.params, *COMMON_PARAMS})
    chosen = draw(st.lists(st.sampled_from(names), unique=True, max_size=4))
    chosen += draw(st.lists(_UNKNOWN_NAME, max_size=1))
    drawn = {name: draw(_value_for(name)) for name in chosen}
    return {**base, **drawn} if draw(st.booleans()) else drawn


def _edge_examples(endpoint: Endpoint, base: dict[str, str]) -> list[dict[str, str]]:
    """Return one query per parameter the endpoint reads and edge value of its kind."""
    names = endpoint.params or ["since", "page", "q"]
    return [{**base, name: value} for name in names for value in EDGE_VALUES[_kind(name)]]


def _probe(tally: Tally, client: Client, path: str, params: dict[str, str]) -> None:
    url = f"{path}?{_query(params)}" if params else path
    started = time.perf_counter()
    response = client.get(url)
    _consume(response)
    tally.record(url, response.status_code, time.perf_counter() - started)


def _endpoint_fuzz(tally: Tally, world: World, endpoint: Endpoint) -> None:
    """Send one endpoint its edge values, then random queries, as lead, admin and token."""
    callers = sorted(world.clients)
    examples = min(EXAMPLES_MAX, EXAMPLES_BASE + EXAMPLES_PER_PARAM * len(endpoint.params))
    base = _base(endpoint, world)

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(who=st.sampled_from(callers), params=_params(endpoint, base))
    def probe(who: str, params: dict[str, str]) -> None:
        _probe(tally, world.clients[who], endpoint.path, params)

    # Edge values go to the callers let in, in turn: a login redirect would test nothing.
    for number, params in enumerate(_edge_examples(endpoint, base)):
        who = endpoint.callers[number % len(endpoint.callers)]
        probe = example(who=who, params=params)(probe)
    probe()


def test_every_get_endpoint_answers_random_and_extreme_parameters_quickly_without_a_5xx(
    world, figure
):
    process = psutil.Process()
    rss_before = process.memory_info().rss
    started = time.perf_counter()
    endpoints = _endpoints(world)
    tally = Tally()
    for endpoint in endpoints:
        _endpoint_fuzz(tally, world, endpoint)
    growth_mb = (process.memory_info().rss - rss_before) / 2**20

    figure("endpoints fuzzed", len(endpoints))
    figure("requests", tally.requests)
    figure("slowest answer (s)", f"{tally.slowest:.3f} ({tally.slowest_url[:120]})")
    figure("RSS growth (MB)", f"{growth_mb:.1f}")
    figure("run time (s)", f"{time.perf_counter() - started:.1f}")
    figure("statuses", dict(sorted(tally.statuses.items())))
    assert {"/overview/", "/audit/export.csv", "/api/v1/queues/digits/reports/drift"} <= {
        endpoint.path for endpoint in endpoints
    }
    assert not tally.failures, "\n".join(tally.failures[:20])
    assert growth_mb < RSS_GROWTH_MB


# Intake bodies: JSON of any shape, and item-shaped JSON with extreme values.
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(HOSTILE_TEXT),
)
_JSON = st.recursive(
    _JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
_FEATURE = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([1e308, -1e308, 5e-324, 10**400, "7", None, True, [1.0]]),
)
# Valid features most of the time: an item is checked field by field, so a hostile
# external_id only reaches the database beside features that pass.
_FEATURES = st.one_of(
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=64, max_size=64),
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=64, max_size=64),
    st.lists(_FEATURE, min_size=64, max_size=64),
    st.lists(_FEATURE, max_size=70),
    _JSON,
)
_EXTERNAL_ID = st.one_of(
    st.uuids().map(str),  # good and unique, so that items are stored too
    st.uuids().map(str),
    st.text(max_size=30),
    st.sampled_from(HOSTILE_TEXT),
    _JSON,
)
_ITEM = st.fixed_dictionaries({"external_id": _EXTERNAL_ID, "features": _FEATURES})
_GOOD = [0.5] * 64
# The bodies that answered 500 before (issue 13), whatever the random ones draw.
_KNOWN_BAD_ITEMS = [
    {"external_id": "\ud800", "features": _GOOD},
    {"external_id": "a\x00b", "features": _GOOD},
    {"external_id": "big", "features": [int("1" * 400), *_GOOD[1:]]},
    {"external_id": "x" * 10_000, "features": _GOOD},
]


def _json_text(body: object) -> str:
    return json.dumps(body)  # ensure_ascii: lone surrogates go as \ud800 escapes


def _post(tally: Tally, client: Client, path: str, body: object) -> None:
    text = _json_text(body)
    started = time.perf_counter()
    response = client.post(path, text, content_type="application/json")
    tally.record(f"POST {path} {text[:200]}", response.status_code, time.perf_counter() - started)


def _intake_fuzz(tally: Tally, client: Client) -> None:
    @settings(
        max_examples=BODY_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        single=st.one_of(_ITEM, _ITEM, _JSON),
        batch=st.one_of(
            st.fixed_dictionaries({"items": st.lists(st.one_of(_ITEM, _ITEM, _JSON), max_size=6)}),
            st.fixed_dictionaries({"items": st.lists(st.one_of(_ITEM, _ITEM, _JSON), max_size=6)}),
            _JSON,
        ),
    )
    def probe(single: object, batch: object) -> None:
        _post(tally, client, "/api/v1/queues/digits/items", single)
        _post(tally, client, "/api/v1/queues/digits/items:batch", batch)

    for item in _KNOWN_BAD_ITEMS:
        probe = example(
            single=item, batch={"items": [item, {"external_id": "ok", "features": _GOOD}]}
        )(probe)
    probe()


def test_intake_answers_random_json_bodies_without_a_5xx(queue, api_token, figure):
    client = Client(HTTP_AUTHORIZATION=f"Bearer {api_token}")
    client.raise_request_exception = False
    tally = Tally()

    _intake_fuzz(tally, client)

    figure("intake bodies sent", tally.requests)
    figure("slowest intake answer (s)", f"{tally.slowest:.3f}")
    figure("intake statuses", dict(sorted(tally.statuses.items())))
    assert not tally.failures, "\n".join(tally.failures[:20])
    stored = Item.objects.filter(queue=queue).count()
    figure("intake items stored", stored)
    assert stored >= 5  # good items were among them, and stored
