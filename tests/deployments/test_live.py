"""Live-path scoring: a time budget, a circuit breaker and a fallback to humans."""

from __future__ import annotations

import time

import numpy as np
import pytest

from deployments import live
from deployments.live_runtime import CircuitBreaker, LiveScorer
from deployments.models import Deployment
from deployments.runtime import BatchResult
from inspections.services import item_create


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeRunner:
    """Stands in for an ONNX session with a chosen delay or failure."""

    input_width = 3

    def __init__(self, *, delay: float = 0.0, error: Exception | None = None) -> None:
        self.delay = delay
        self.error = error
        self.calls = 0

    def predict(self, features: np.ndarray) -> BatchResult:
        self.calls += 1
        time.sleep(self.delay)
        if self.error is not None:
            raise self.error
        probabilities = np.array([[0.1, 0.7, 0.2]], dtype=np.float32)
        return BatchResult(np.array([1]), probabilities, self.delay)


def _scorer(runner, *, budget=0.05, failures=3, open_seconds=10.0, clock=None):
    breaker = CircuitBreaker(
        failures_to_open=failures, open_seconds=open_seconds, clock=clock or time.monotonic
    )
    return LiveScorer(runner, ["a", "b", "c"], budget_seconds=budget, breaker=breaker)


def test_breaker_opens_after_k_consecutive_failures_and_closes_after_a_good_trial():
    clock = FakeClock()
    breaker = CircuitBreaker(failures_to_open=3, open_seconds=30, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 29.9
    assert not breaker.allow()
    clock.now = 30.0
    assert breaker.state == "half-open"
    assert breaker.allow()
    assert not breaker.allow(), "only one trial call while half-open"
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()


def test_a_failed_trial_opens_the_breaker_for_another_period():
    clock = FakeClock()
    breaker = CircuitBreaker(failures_to_open=1, open_seconds=5, clock=clock)
    breaker.record_failure()
    clock.now = 5
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now = 9.9
    assert not breaker.allow()
    clock.now = 10
    assert breaker.allow()


def test_the_breaker_reports_each_opening_once_and_not_the_calls_that_failed_while_open():
    clock = FakeClock()
    openings: list[float] = []
    breaker = CircuitBreaker(
        failures_to_open=2, open_seconds=5, clock=clock, on_open=lambda: openings.append(clock.now)
    )
    breaker.record_failure()
    assert openings == []
    breaker.record_failure()
    assert openings == [0.0]
    breaker.record_failure()  # a call that was already running when it opened
    assert openings == [0.0]
    clock.now = 6
    assert breaker.allow()
    breaker.record_failure()  # the half-open trial failed: it opens again
    assert openings == [0.0, 6.0]


def test_a_success_resets_the_count_of_consecutive_failures():
    breaker = CircuitBreaker(failures_to_open=2, open_seconds=5)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"


def test_live_scorer_returns_the_model_decision_within_budget():
    result = _scorer(FakeRunner()).score([1.0, 2.0, 3.0])
    assert not result.is_fallback
    assert result.label == "b"
    assert result.confidence == pytest.approx(0.7)
    assert result.latency_ms < 1000


def test_a_slow_model_falls_back_to_humans_and_trips_the_breaker():
    runner = FakeRunner(delay=0.2)
    scorer = _scorer(runner, budget=0.02, failures=2)
    first = scorer.score([1.0, 2.0, 3.0])
    assert first.is_fallback and "within 20 ms" in first.fallback_reason
    assert first.latency_ms < 150
    scorer.score([1.0, 2.0, 3.0])
    calls = runner.calls
    third = scorer.score([1.0, 2.0, 3.0])
    assert third.fallback_reason == "circuit open"
    assert runner.calls == calls, "an open breaker does not call the model"


def test_a_failing_model_falls_back_with_the_reason():
    result = _scorer(FakeRunner(error=RuntimeError("kaput"))).score([1.0, 2.0, 3.0])
    assert result.is_fallback
    assert "RuntimeError: kaput" in result.fallback_reason


def test_invalid_features_fall_back_without_counting_against_the_model():
    runner = FakeRunner()
    scorer = _scorer(runner, failures=1)
    assert scorer.score([1.0, float("nan"), 3.0]).fallback_reason == "invalid features"
    assert scorer.score([1.0]).fallback_reason == "invalid features"
    assert scorer.breaker.state == "closed" and runner.calls == 0


@pytest.mark.django_db
def test_live_path_scores_a_real_item_like_the_shadow_path(model_version, queue, digit_rows):
    live.live_scorers_clear()
    item = item_create(queue=queue, external_id="live-1", features=digit_rows[0].tolist())
    result = live.item_score_live(item=item, model_version=model_version)
    assert not result.is_fallback
    runner = live.live_scorer(model_version).runner
    expected = runner.predict(digit_rows[:1])
    assert result.label == model_version.labels[int(expected.label_indices[0])]
    live.live_scorers_clear()


@pytest.mark.django_db
def test_web_start_preloads_the_models_that_decide_items(model_version, queue):
    live.live_scorers_clear()
    assert live.live_preload() == 0
    Deployment.objects.create(
        queue=queue,
        model_version=model_version,
        role=Deployment.Role.LIVE,
        traffic_share=1.0,
        started_at=model_version.created_at,
    )
    assert live.live_preload() == 1
    assert model_version.pk in live._scorers
    live.live_scorers_clear()


def test_runner_uses_the_preferred_providers_that_onnxruntime_offers(digits_onnx):
    from deployments.runtime import ModelRunner

    runner = ModelRunner(
        digits_onnx,
        input_name="X",
        probability_output="probabilities",
        input_width=64,
        providers=["NoSuchExecutionProvider", "CPUExecutionProvider"],
    )
    assert runner.providers == ["CPUExecutionProvider"]


@pytest.mark.django_db
def test_a_batch_scores_like_single_items_and_refuses_only_its_invalid_rows(
    model_version, digit_rows
):
    scorer = live.live_scorer(model_version)
    rows = digit_rows[:100].astype(np.float32)
    rows[7, 3] = np.nan
    as_lists = [[float(v) for v in row] for row in rows]
    as_lists[9] = as_lists[9][:10]

    from_matrix = scorer.score_batch(rows, chunk_rows=16)
    from_lists = scorer.score_batch(as_lists, chunk_rows=16)
    one_by_one = [scorer.score(row) for row in as_lists]

    assert from_matrix[7].fallback_reason == from_lists[7].fallback_reason == "invalid features"
    assert from_lists[9].fallback_reason == one_by_one[9].fallback_reason == "invalid features"
    for index in set(range(100)) - {7, 9}:
        assert not from_matrix[index].is_fallback
        assert from_matrix[index].label == from_lists[index].label == one_by_one[index].label
        assert from_matrix[index].confidence == pytest.approx(
            one_by_one[index].confidence, abs=1e-5
        )
    assert scorer.score_batch(rows[:, :10]) == [scorer.score_batch(rows[:1, :10])[0]] * 100
