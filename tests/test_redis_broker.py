"""A worker that loses Redis while it holds a message reconnects instead of exiting."""

from __future__ import annotations

import shutil
import uuid

import pytest
from kombu import Connection
from kombu.common import ignore_errors

from tests.integration.servers import RedisServer

pytestmark = pytest.mark.chaos


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(folder=tmp_path)
    server.start()
    yield server
    server.stop()


def _close_after_broker_failure(connection: Connection) -> None:
    """Close a connection whose channel holds a message, as Celery 5.7 does after a failure.

    The consumer first collects the connection, which ends by dropping the transport's link
    to the connection settings, then closes it, which hands the message back to Redis.
    """
    queue = connection.SimpleQueue(f"chaos-{uuid.uuid4().hex[:8]}")
    queue.put({"item": 1})
    message = queue.get(timeout=5)
    assert not message.acknowledged  # in hand, as a running task's message is
    connection._do_close_transport()  # the end of Connection.collect()
    ignore_errors(connection, connection.close)


def test_kombus_redis_transport_raises_on_closing_a_collected_connection(redis_server):
    # The upstream behaviour this module works around; when it is fixed, the workaround goes.
    with pytest.raises(AttributeError):
        _close_after_broker_failure(Connection(redis_server.url))


def test_closing_a_collected_connection_with_a_message_in_hand_raises_nothing(redis_server):
    _close_after_broker_failure(
        Connection(redis_server.url, transport="shadowlab.redis_broker:Transport")
    )
