"""Coalesce new items into scoring batches before they go to the broker (no Django import).

Items often arrive one per request. Sending one message per item would make workers pay the
per-message and per-query cost for every item; instead each process collects ids per model
version and sends a batch when it is full or when its oldest id has waited `max_wait`
seconds. Ids still in a buffer when a process dies are committed items without a
prediction, which the sweeper queues again: the buffer never holds the only copy.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("shadowlab.scoring")

# (model version id, entries) -> whether the broker took them
Send = Callable[[int, list[Any]], bool]


class ScoringBuffer:
    """Per-process buffer of item ids per model version, flushed by size or by age."""

    def __init__(self, send: Send, *, batch_size: int, max_wait: float) -> None:
        self._send = send
        self.batch_size = max(1, batch_size)
        self.max_wait = max(0.0, max_wait)
        self._lock = threading.Condition()
        self._pending: dict[int, list[Any]] = {}
        self._deadline: float | None = None
        self._thread: threading.Thread | None = None

    def add(self, version_id: int, entries: list[Any]) -> None:
        """Queue entries for a version: full batches leave at once, the rest within max_wait."""
        if self.max_wait == 0:
            self._send_chunks(version_id, entries)
            return
        full: list[Any] = []
        with self._lock:
            pending = self._pending.setdefault(version_id, [])
            pending.extend(entries)
            if len(pending) >= self.batch_size:
                cut = len(pending) - len(pending) % self.batch_size
                full, self._pending[version_id] = pending[:cut], pending[cut:]
            if self._pending[version_id] and self._deadline is None:
                self._deadline = time.monotonic() + self.max_wait
                self._ensure_thread()
                self._lock.notify()
        if full:
            self._send_chunks(version_id, full)

    def flush(self) -> None:
        """Send everything buffered now."""
        with self._lock:
            pending, self._pending, self._deadline = self._pending, {}, None
        for version_id, entries in pending.items():
            if entries:
                self._send_chunks(version_id, entries)

    def pending(self) -> int:
        with self._lock:
            return sum(len(entries) for entries in self._pending.values())

    def _send_chunks(self, version_id: int, entries: list[Any]) -> None:
        for start in range(0, len(entries), self.batch_size):
            self._send(version_id, entries[start : start + self.batch_size])

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="scoring-buffer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._deadline is None:
                    self._lock.wait()
                delay = self._deadline - time.monotonic()
                if delay > 0:
                    self._lock.wait(timeout=delay)
                    continue
            try:
                self.flush()
            except Exception:  # the sweeper recovers whatever could not be sent
                log.exception("scoring buffer flush failed")

    def reset_after_fork(self) -> None:
        """A forked child starts empty: its parent's ids and flusher thread stay with the parent."""
        self._lock = threading.Condition()
        self._pending = {}
        self._deadline = None
        self._thread = None


_buffer: ScoringBuffer | None = None
_buffer_lock = threading.Lock()


def buffer_get(send: Send, *, batch_size: int, max_wait: float) -> ScoringBuffer:
    """Return this process's buffer, created on first use, with the current batch settings."""
    global _buffer
    with _buffer_lock:
        if _buffer is None:
            _buffer = ScoringBuffer(send, batch_size=batch_size, max_wait=max_wait)
            atexit.register(_buffer.flush)
            os.register_at_fork(after_in_child=_buffer.reset_after_fork)
        else:
            _buffer.batch_size = max(1, batch_size)
            _buffer.max_wait = max(0.0, max_wait)
        return _buffer


def buffer_discard() -> None:
    """Forget this process's buffer (settings changed, or between tests)."""
    global _buffer
    with _buffer_lock:
        if _buffer is not None:
            _buffer.flush()
        _buffer = None
