"""The per-process buffer that coalesces item ids into scoring batches."""

from __future__ import annotations

import threading
import time

from deployments.batching import ScoringBuffer


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[tuple[int, list[int]]] = []
        self.fail_first = fail_first
        self.arrived = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, version_id: int, item_ids: list[int]) -> bool:
        with self.lock:
            if self.fail_first:
                self.fail_first -= 1
                raise ConnectionError("broker down")
            self.sent.append((version_id, list(item_ids)))
        self.arrived.set()
        return True

    def ids(self, version_id: int) -> list[int]:
        return [i for v, ids in self.sent for i in ids if v == version_id]


def test_full_batches_leave_at_once_and_the_rest_within_the_wait():
    send = Recorder()
    buffer = ScoringBuffer(send, batch_size=4, max_wait=0.05)
    buffer.add(1, list(range(10)))
    assert send.sent == [(1, [0, 1, 2, 3]), (1, [4, 5, 6, 7])]
    assert send.arrived.wait(timeout=2)
    deadline = time.monotonic() + 2
    while buffer.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert send.ids(1) == list(range(10))
    assert send.sent[-1] == (1, [8, 9])


def test_single_items_are_coalesced_into_one_message():
    send = Recorder()
    buffer = ScoringBuffer(send, batch_size=256, max_wait=0.2)
    for item_id in range(30):
        buffer.add(7, [item_id])
    assert send.sent == []
    assert send.arrived.wait(timeout=2)
    assert send.sent == [(7, list(range(30)))]


def test_zero_wait_sends_every_call_straight_away_in_batch_sized_chunks():
    send = Recorder()
    buffer = ScoringBuffer(send, batch_size=3, max_wait=0)
    buffer.add(2, [1, 2, 3, 4])
    assert send.sent == [(2, [1, 2, 3]), (2, [4])]


def test_flush_sends_everything_buffered_per_model_version():
    send = Recorder()
    buffer = ScoringBuffer(send, batch_size=100, max_wait=60)
    buffer.add(1, [1, 2])
    buffer.add(2, [3])
    buffer.flush()
    assert sorted(send.sent) == [(1, [1, 2]), (2, [3])]
    assert buffer.pending() == 0


def test_ids_added_from_many_threads_are_each_sent_exactly_once():
    send = Recorder()
    buffer = ScoringBuffer(send, batch_size=16, max_wait=0.02)

    def producer(offset: int) -> None:
        for n in range(200):
            buffer.add(1, [offset + n])

    threads = [threading.Thread(target=producer, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 3
    while buffer.pending() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    sent = send.ids(1)
    assert sorted(sent) == sorted(k * 1000 + n for k in range(4) for n in range(200))
    assert all(len(ids) <= 16 for _, ids in send.sent)


def test_a_failed_send_does_not_stop_later_flushes():
    send = Recorder(fail_first=1)
    buffer = ScoringBuffer(send, batch_size=100, max_wait=0.02)
    buffer.add(1, [1])
    time.sleep(0.2)
    buffer.add(1, [2])
    assert send.arrived.wait(timeout=2)
    assert send.ids(1) == [2]
