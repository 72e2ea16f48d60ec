"""kombu's Redis transport, kept from crashing a worker that loses Redis with messages in hand.

When a worker's connection to Redis breaks, Celery 5.7 first collects the connection (which
drops its transport's link to the connection settings) and then closes it. Closing the
channel hands its unacknowledged messages back to Redis, which needs those settings:
kombu raised AttributeError there, outside the connection errors Celery ignores, and the
whole worker exited ("Unrecoverable error") whenever Redis went away while it held a
message. Here the channel says the connection is gone, a connection error: the worker
reconnects, and Redis hands those messages out again after the visibility timeout (the
sweeper queues their items again sooner). No Django import: Celery loads this from the
settings.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    """A Redis channel that cannot be asked for a new connection pool once it was collected."""

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection was already closed")
        return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]


class Transport(redis.Transport):
    """The Redis transport with the channel above."""

    Channel = Channel
