"""Rate limit of the HTTP API: each API token has its own budget (SHADOWLAB_API_RATE)."""

from __future__ import annotations

import functools
import logging
import re
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle
from redis import Redis
from redis.exceptions import RedisError

from inspections.models import ApiToken

log = logging.getLogger(__name__)

_PERIOD_SECONDS = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_RATE = re.compile(r"([1-9][0-9]{0,8})/([1-9][0-9]{0,3})?(s|sec|m|min|h|hour|d|day)")


def rate_parse(rate: str) -> tuple[int, int]:
    """Return (requests, seconds) of a rate such as "6000/m", "100/s" or "50/5m"."""
    match = _RATE.fullmatch(rate.strip())
    if match is None:
        raise ValueError(f"a rate is requests/period such as 6000/m or 100/s, not {rate!r}")
    requests, multiple, unit = match.groups()
    return int(requests), int(multiple or 1) * _PERIOD_SECONDS[unit]


@functools.cache
def _redis(url: str) -> Redis:
    # A connection pool per process; redis-py starts a new one in a forked child.
    return Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


class ApiTokenThrottle(BaseThrottle):
    """Allow each API token so many requests per period; requests by signed-in users pass.

    A fixed window counted with an atomic increment: in Redis when there is one (REDIS_URL),
    so every web process counts together, else in the process's cache. Ninja's
    SimpleRateThrottle keeps the time of every request of the window in one cached list,
    read and written whole on every request: 6,000 entries a request at the default rate,
    and two processes writing at once lose each other's. A fixed window lets up to twice
    the rate through across a boundary, which a budget this generous can afford.
    """

    def __init__(self) -> None:
        # One throttle serves every request of the process: the wait belongs to the thread.
        self._refused = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        token = getattr(request, "auth", None)
        if not isinstance(token, ApiToken):
            return True
        limit, period = rate_parse(settings.SHADOWLAB_API_RATE)
        now = time.time()
        window = int(now // period)
        # The hash fragment keeps a token's count from passing to a later one with its id.
        key = f"throttle:api-token:{token.pk}:{token.token_hash[:12]}:{period}:{window}"
        try:
            count = self._count(key, period)
        except (RedisError, OSError) as exc:
            # The API keeps answering while Redis restarts; only the limit is off meanwhile.
            log.warning("API rate limit not applied: the cache did not answer (%s)", exc)
            return True
        if count <= limit:
            return True
        self._refused.wait = (window + 1) * period - now
        return False

    @staticmethod
    def _count(key: str, period: int) -> int:
        if settings.REDIS_URL:
            # One round trip (the cache's incr takes two, as it first checks the key exists):
            # this runs on every API request.
            pipeline = _redis(settings.REDIS_URL).pipeline(transaction=False)
            pipeline.incr(f"shadowlab:{key}")
            pipeline.expire(f"shadowlab:{key}", period + 1)
            count, _ = pipeline.execute()
            return int(count)
        try:
            return int(cache.incr(key))
        except ValueError:  # the window's first request
            if cache.add(key, 1, timeout=period + 1):
                return 1
            return int(cache.incr(key))

    def wait(self) -> float | None:
        return getattr(self._refused, "wait", None)
