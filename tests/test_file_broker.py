"""The embedded broker hands over whole messages only, even while they are being written."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from pathlib import Path

import pytest
from kombu import Connection

from shadowlab.file_broker import UNREADABLE

TRANSPORT = "shadowlab.file_broker:Transport"


def _queue_name() -> str:
    # kombu keeps declared exchanges in class-level state, so each test uses its own names.
    return f"inference{uuid.uuid4().hex[:8]}"


def _connection(folder: Path, transport: str = TRANSPORT) -> Connection:
    for name in ("messages", "control", "processed"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    return Connection(
        "filesystem://localhost/",
        transport=transport,
        transport_options={
            "data_folder_in": str(folder / "messages"),
            "data_folder_out": str(folder / "messages"),
            "control_folder": str(folder / "control"),
            "processed_folder": str(folder / "processed"),
            "store_processed": False,
        },
    )


def test_a_message_sent_is_received_once_and_leaves_no_file(tmp_path):
    with _connection(tmp_path) as connection:
        queue = connection.SimpleQueue(_queue_name())
        queue.put({"items": [1, 2, 3]})
        message = queue.get(timeout=2)
        message.ack()
        assert message.payload == {"items": [1, 2, 3]}
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.2)
        queue.close()
    assert not list((tmp_path / "messages").glob("*.msg"))
    assert not list((tmp_path / "processed").glob("*.msg"))


def test_a_message_still_being_written_is_left_alone(tmp_path):
    with _connection(tmp_path) as connection:
        queue = connection.SimpleQueue(name := _queue_name())
        # What a sender leaves while it writes: a private name no consumer picks up.
        partial = tmp_path / "messages" / f".1_abc.{name}.msg.part"
        partial.write_bytes(b'{"body": "half')
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.3)
        assert partial.exists()
        queue.close()


def test_an_undecodable_message_is_set_aside_and_the_next_one_is_read(tmp_path):
    with _connection(tmp_path) as connection:
        queue = connection.SimpleQueue(name := _queue_name())
        (tmp_path / "messages" / f"0_broken.{name}.msg").write_bytes(b"{not json")
        queue.put({"n": 1})
        message = queue.get(timeout=2)
        message.ack()
        assert message.payload == {"n": 1}
        queue.close()
    assert (tmp_path / "processed" / UNREADABLE / f"0_broken.{name}.msg").exists()


def _send_many(folder: Path, name: str, transport: str, count: int, body: str) -> None:
    with _connection(folder, transport) as sending:
        outbox = sending.SimpleQueue(name)
        for n in range(count):
            outbox.put({"n": n, "body": body})
        outbox.close()


def test_every_message_arrives_whole_while_another_process_sends(tmp_path):
    sent, name = 300, _queue_name()
    # Large bodies widen the window in which kombu's own transport shows a file not yet whole.
    body = "x" * 1_000_000
    sender = multiprocessing.get_context("spawn").Process(
        target=_send_many, args=(tmp_path, name, TRANSPORT, sent, body)
    )
    received = []
    with _connection(tmp_path) as receiving:
        inbox = receiving.SimpleQueue(name)
        sender.start()
        while len(received) < sent:
            message = inbox.get(timeout=20)
            message.ack()
            assert message.payload["body"] == body
            received.append(message.payload["n"])
        inbox.close()
    sender.join(timeout=60)
    assert sorted(received) == list(range(sent))


def test_an_event_loop_receives_the_messages_so_workers_run_the_asynchronous_pool(tmp_path):
    # Celery gives a worker its asynchronous pool (a pipe per pool process) only for a transport
    # that works from its event loop; otherwise all processes share one pipe behind one lock.
    from kombu import Consumer, Queue
    from kombu.asynchronous import Hub

    with _connection(tmp_path) as connection:
        assert connection.transport.implements.asynchronous
        name = _queue_name()
        inbox = Queue(name, routing_key=name)
        received: list[int] = []

        def on_message(body, message):
            received.append(body["n"])
            message.ack()

        with connection.Producer() as producer:
            for n in range(250):
                producer.publish({"n": n}, routing_key=name, declare=[inbox])
        hub = Hub()
        with Consumer(connection, queues=[inbox], callbacks=[on_message], prefetch_count=None):
            connection.transport.register_with_event_loop(connection.connection, hub)
            loop = hub.create_loop()
            deadline = time.monotonic() + 20
            while len(received) < 250 and time.monotonic() < deadline:
                next(loop)
        hub.close()
    assert sorted(received) == list(range(250))
