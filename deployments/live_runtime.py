"""Score one item synchronously within a time budget, behind a circuit breaker (no Django).

Used on the live path, where a model decides items: if the model is slow, failing or shut
off by the breaker, the caller gets a fallback result and sends the item to humans.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

import numpy as np

from deployments.runtime import ModelRunner
from shadowlab.finite import is_finite_number


class CircuitBreaker:
    """Stop calling a model after K consecutive failures, for T seconds.

    Closed: calls pass. After `failures_to_open` consecutive failures it opens: calls are
    refused until `open_seconds` have passed. Then one trial call is let through (half-open):
    success closes the breaker, failure opens it for another period.
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

    def __init__(
        self,
        *,
        failures_to_open: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures_to_open = max(1, failures_to_open)
        self.open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self._opened_at is None:
            return self.CLOSED
        if self._clock() - self._opened_at >= self.open_seconds:
            return self.HALF_OPEN
        return self.OPEN

    def allow(self) -> bool:
        """Return whether a call may go to the model now."""
        with self._lock:
            state = self._state()
            if state == self.CLOSED:
                return True
            if state == self.HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_running = False

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.failures_to_open:
                self._opened_at = self._clock()
            self._trial_running = False


@dataclass(frozen=True)
class LiveResult:
    """The model's decision, or a fallback (label None) that sends the item to humans."""

    label: str | None
    confidence: float | None
    probabilities: list[float] | None
    latency_ms: float
    fallback_reason: str = ""

    @property
    def is_fallback(self) -> bool:
        return self.label is None


class LiveScorer:
    """A pre-loaded model that scores one item at a time within a budget."""

    def __init__(
        self,
        runner: ModelRunner,
        labels: list[str],
        *,
        budget_seconds: float,
        breaker: CircuitBreaker,
        threads: int = 2,
    ) -> None:
        self.runner = runner
        self.labels = labels
        self.budget_seconds = budget_seconds
        self.breaker = breaker
        # Inference runs in a small pool so that the caller can stop waiting at the budget.
        # ONNX Runtime cannot be interrupted: a late call finishes in the background.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="live-score")

    def score(self, features: Sequence[float]) -> LiveResult:
        started = time.perf_counter()

        def fallback(reason: str) -> LiveResult:
            return LiveResult(None, None, None, (time.perf_counter() - started) * 1000, reason)

        if len(features) != self.runner.input_width or not all(map(is_finite_number, features)):
            return fallback("invalid features")
        if not self.breaker.allow():
            return fallback("circuit open")
        row = np.asarray([features], dtype=np.float32)
        future = self._pool.submit(self.runner.predict, row)
        try:
            result = future.result(timeout=self.budget_seconds)
        except FutureTimeout:
            self.breaker.record_failure()
            return fallback(f"no answer within {self.budget_seconds * 1000:.0f} ms")
        except Exception as exc:
            self.breaker.record_failure()
            return fallback(f"inference failed: {type(exc).__name__}: {exc}")
        probabilities = result.probabilities[0]
        if not np.all(np.isfinite(probabilities)):
            self.breaker.record_failure()
            return fallback("model returned non-finite probabilities")
        self.breaker.record_success()
        return LiveResult(
            label=self.labels[int(result.label_indices[0])],
            confidence=float(probabilities.max()),
            probabilities=[float(p) for p in probabilities],
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
