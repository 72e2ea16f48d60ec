"""API rate limit per token: the request past the budget gets 429 and Retry-After, others go on."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client, RequestFactory

from inspections.models import Item
from inspections.services import api_token_create
from shadowlab.throttling import rate_parse

pytestmark = [pytest.mark.django_db, pytest.mark.security]

FEATURES = [float(n % 17) for n in range(64)]


def _client(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _submit(token: str, external_id: str, *, slug: str = "digits", features=FEATURES):
    body = json.dumps({"external_id": external_id, "features": features})
    return _client(token).post(
        f"/api/v1/queues/{slug}/items", body, content_type="application/json"
    )


def test_the_request_past_a_tokens_budget_gets_429_with_retry_after(
    settings, queue, other_queue, api_token, figure
):
    settings.SHADOWLAB_API_RATE = "3/m"
    colleague = api_token_create(queue=queue, name="second client")[1]
    elsewhere = api_token_create(queue=other_queue, name="parts client")[1]
    # Windows are clock minutes: near a minute's end, the 4th request could fall in the next
    # one (seen on a loaded machine). Start with at least 20 s of the window left.
    if 60 - time.time() % 60 < 20:
        time.sleep(60 - time.time() % 60 + 0.05)

    answers = [_submit(api_token, f"scan-{n}").status_code for n in range(3)]
    refused = _submit(api_token, "scan-3")

    assert answers == [201, 201, 201]
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert refused.json() == {
        "detail": "too many requests with this API token: at most 3/m",
    }
    assert not Item.objects.filter(external_id="scan-3").exists()
    # Reads count too: the budget is the token's, whatever it asks for.
    first = Item.objects.get(external_id="scan-0")
    assert _client(api_token).get(f"/api/v1/items/{first.pk}").status_code == 429
    # Another token of the same queue, and one of another queue, have budgets of their own.
    assert _submit(colleague, "scan-4").status_code == 201
    assert _client(colleague).get(f"/api/v1/items/{first.pk}").status_code == 200
    assert _submit(elsewhere, "part-1", slug="parts", features=[1.0, 2.0, 3.0]).status_code == 201
    figure("requests a token with a 3/m budget had answered before its 429", len(answers))


def test_the_budget_comes_back_in_the_next_window(settings, api_token):
    settings.SHADOWLAB_API_RATE = "2/2s"
    # Start at the beginning of a window so that the three requests fall in one.
    time.sleep(2 - time.time() % 2)
    assert [_submit(api_token, f"scan-{n}").status_code for n in range(3)] == [201, 201, 429]

    time.sleep(2 - time.time() % 2 + 0.05)

    assert _submit(api_token, "scan-3").status_code == 201


def test_signed_in_users_of_the_session_api_are_not_counted_against_tokens(
    settings, client_for, ml_lead, queue
):
    settings.SHADOWLAB_API_RATE = "1/m"
    client = client_for(ml_lead)
    answers = [client.get("/api/v1/queues/digits/gate-policy").status_code for _ in range(3)]
    assert answers == [200, 200, 200]


def test_the_api_keeps_taking_items_while_the_cache_is_down(settings, api_token):
    settings.SHADOWLAB_API_RATE = "1/m"
    settings.REDIS_URL = "redis://127.0.0.1:9/0"  # the discard port: nothing answers there

    answers = [_submit(api_token, f"scan-{n}").status_code for n in range(3)]

    assert answers == [201, 201, 201]


def test_a_generous_budget_lets_every_request_through_and_its_cost_is_measured(
    settings, queue, figure
):
    from django.conf import settings as live

    from shadowlab.throttling import ApiTokenThrottle

    token = api_token_create(queue=queue, name="timed")[0]
    request = RequestFactory().post("/api/v1/queues/digits/items")
    request.auth = token  # type: ignore[attr-defined]
    throttle = ApiTokenThrottle()
    settings.SHADOWLAB_API_RATE = "1000000/m"

    started = time.perf_counter()
    allowed = sum(throttle.allow_request(request) for _ in range(500))
    each_ms = (time.perf_counter() - started) / 500 * 1000

    assert allowed == 500
    where = "Redis" if live.REDIS_URL else "local memory"
    figure(f"time to count one API request ({where})", f"{each_ms:.3f} ms")


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("6000/m", (6000, 60)), ("100/s", (100, 1)), ("50/5min", (50, 300)), ("1/day", (1, 86400))],
)
def test_a_rate_is_requests_per_period(rate, parsed):
    assert rate_parse(rate) == parsed


@pytest.mark.parametrize("rate", ["", "6000", "0/m", "-1/m", "1e3/m", "10/fortnight", "10/0m"])
def test_a_rate_that_cannot_be_read_is_refused(rate):
    with pytest.raises(ValueError, match="a rate is requests/period"):
        rate_parse(rate)
