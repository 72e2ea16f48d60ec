"""Hand memory freed by finished requests back to the system (glibc's malloc_trim).

glibc keeps what a thread frees in that thread's arena and gives back to the system only
what lies at the top of a heap; the free pages in between stay resident. A report page of a
busy day allocates tens of MB in whichever of gunicorn's threads ran it, so without help a
web process keeps the high-water mark of each of its threads, fragmented. In the 30-minute
soak (bench/soak.py) malloc_trim(0) in the running web processes gave back 60 and 91 MB
of their 333 and 389 MB resident. It hands back every whole free page of every arena and
took 3 ms on a 1.3 GB heap, so a process runs it after a request at most once per
TRIM_EVERY_SECONDS. With a C library that has no malloc_trim (musl, macOS) nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable

TRIM_EVERY_SECONDS = 10.0


def malloc_trim_find() -> Callable[[int], int] | None:
    """Return the C library's malloc_trim, or None where there is none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


class MemoryTrimmer:
    """Trim the process's heaps after a request, at most once per `every_seconds`.

    Safe to call from every request thread: one of them trims, the others go on.
    """

    def __init__(
        self,
        every_seconds: float = TRIM_EVERY_SECONDS,
        trim: Callable[[int], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every_seconds = every_seconds
        self._trim = trim if trim is not None else malloc_trim_find()
        self._clock = clock
        self._last: float | None = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._trim is not None

    def after_request(self) -> bool:
        """Trim unless the last trim is under `every_seconds` old; return whether it did."""
        if self._trim is None:
            return False
        now = self._clock()
        with self._lock:
            if self._last is not None and now - self._last < self.every_seconds:
                return False
            self._last = now
        self._trim(0)
        return True
