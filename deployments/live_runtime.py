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

from deployments.input_range import InputRange
from deployments.runtime import ModelRunner
from shadowlab.finite import is_finite_number


class CircuitBreaker:
    """Stop calling a model after K consecutive failures, for T seconds.

    Closed: calls pass. After `failures_to_open` consecutive failures it opens: calls are
    refused until `open_seconds` have passed. Then one trial call is let through (half-open):
    success closes the breaker, failure opens it for another period. `on_open` is called
    each time it opens (outside the lock), for metrics.
    """

    CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"

    def __init__(
        self,
        *,
        failures_to_open: int,
        open_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self.failures_to_open = max(1, failures_to_open)
        self.open_seconds = open_seconds
        self._clock = clock
        self._on_open = on_open
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
        opened = False
        with self._lock:
            self._failures += 1
            if self._trial_running or self._failures >= self.failures_to_open:
                # A call that started before the breaker opened may fail after: that extends
                # the open period but is not another opening.
                opened = self._state() != self.OPEN
                self._opened_at = self._clock()
            self._trial_running = False
        if opened and self._on_open is not None:
            self._on_open()


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
        input_range: InputRange | None = None,
    ) -> None:
        self.runner = runner
        self.input_range = input_range
        self.labels = labels
        self.budget_seconds = budget_seconds
        self.breaker = breaker
        # Inference runs in a small pool so that the caller can stop waiting at the budget.
        # ONNX Runtime cannot be interrupted: a late call finishes in the background.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="live-score")

    def score(self, features: Sequence[float]) -> LiveResult:
        """Score one item within the budget; a fallback result says why there is no answer."""
        return self.score_batch([features], chunk_rows=1)[0]

    def score_batch(
        self, rows: Sequence[Sequence[float]] | np.ndarray, *, chunk_rows: int = 64
    ) -> list[LiveResult]:
        """Score many items, chunk_rows per model call, each call within the budget.

        rows are feature lists, each checked here, or a float matrix of features a caller
        has checked already (intake), whose rows are only checked for finiteness, at once.
        One call is one success or failure for the breaker, so a slow batch opens it as a
        slow item would; rows after that fall back as "circuit open" without waiting.
        """
        invalid = LiveResult(None, None, None, 0.0, "invalid features")
        results: list[LiveResult] = [invalid] * len(rows)
        valid = self._valid_rows(rows)
        if not valid:
            return results
        # float64: a value float32 cannot hold must reach the range check as itself.
        matrix = np.asarray(
            rows[valid] if isinstance(rows, np.ndarray) else [rows[i] for i in valid],
            dtype=np.float64,
        )
        if self.input_range is not None:
            # Far outside the reference data no model decides: inspectors do, never a model
            # call (so the breaker does not count it either).
            problems = self.input_range.problems(matrix)
            for index, problem in zip(valid, problems, strict=True):
                if problem:
                    results[index] = LiveResult(None, None, None, 0.0, problem)
            kept = [row for row, problem in enumerate(problems) if problem is None]
            if len(kept) < len(valid):
                valid, matrix = [valid[row] for row in kept], matrix[kept]
        step = max(1, chunk_rows)
        for start in range(0, len(valid), step):
            answers = self._call(matrix[start : start + step])
            for index, result in zip(valid[start : start + step], answers, strict=True):
                results[index] = result
        return results

    def _valid_rows(self, rows: Sequence[Sequence[float]] | np.ndarray) -> list[int]:
        """Return the indices of the rows the model can take: the right width, all finite."""
        width = self.runner.input_width
        if isinstance(rows, np.ndarray):
            if rows.ndim != 2 or rows.shape[1] != width:
                return []
            return [int(i) for i in np.flatnonzero(np.isfinite(rows).all(axis=1))]
        return [
            index
            for index, features in enumerate(rows)
            if len(features) == width and all(map(is_finite_number, features))
        ]

    def _call(self, matrix: np.ndarray) -> list[LiveResult]:
        started = time.perf_counter()

        def fallback(reason: str) -> list[LiveResult]:
            spent = (time.perf_counter() - started) * 1000
            return [LiveResult(None, None, None, spent, reason)] * len(matrix)

        if not self.breaker.allow():
            return fallback("circuit open")
        future = self._pool.submit(self.runner.predict, matrix)
        try:
            result = future.result(timeout=self.budget_seconds)
        except FutureTimeout:
            self.breaker.record_failure()
            return fallback(f"no answer within {self.budget_seconds * 1000:.0f} ms")
        except Exception as exc:
            self.breaker.record_failure()
            return fallback(f"inference failed: {type(exc).__name__}: {exc}")
        finite = np.isfinite(result.probabilities).all(axis=1)
        if not finite.all():
            self.breaker.record_failure()
        else:
            self.breaker.record_success()
        spent = (time.perf_counter() - started) * 1000
        answers: list[LiveResult] = []
        for row, probabilities in enumerate(result.probabilities):
            if not finite[row]:
                answers.append(
                    LiveResult(None, None, None, spent, "model returned non-finite probabilities")
                )
                continue
            answers.append(
                LiveResult(
                    label=self.labels[int(result.label_indices[row])],
                    confidence=float(probabilities.max()),
                    probabilities=[float(p) for p in probabilities],
                    latency_ms=spent,
                )
            )
        return answers

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
