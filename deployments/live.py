"""Live-path scoring for Django callers: scorers per model version, pre-loaded at start-up."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import DatabaseError

from deployments import metrics
from deployments.live_runtime import CircuitBreaker, LiveResult, LiveScorer
from deployments.models import Deployment, ModelVersion
from deployments.registry import reference_data
from deployments.scoring_cache import model_input_range, model_runner
from inspections.models import Item

log = logging.getLogger("shadowlab.live")

_scorers: dict[int, LiveScorer] = {}
_lock = threading.Lock()


def live_scorer(model_version: ModelVersion) -> LiveScorer:
    """Return this process's scorer for a model version, loading and warming it once."""
    scorer = _scorers.get(model_version.pk)
    if scorer is not None:
        return scorer
    with _lock:
        scorer = _scorers.get(model_version.pk)
        if scorer is None:
            cfg = settings.SHADOWLAB
            runner = model_runner(model_version)
            reference = reference_data(model_version)
            if reference is not None:
                runner.warm(reference[:64])
                for row in reference[:32]:  # the live path runs at batch 1: warm that shape
                    runner.predict(row[None, :])
            scorer = LiveScorer(
                runner,
                model_version.labels,
                budget_seconds=cfg["LIVE_BUDGET_MS"] / 1000,
                breaker=CircuitBreaker(
                    failures_to_open=cfg["BREAKER_FAILURES"],
                    open_seconds=cfg["BREAKER_OPEN_SECONDS"],
                    on_open=metrics.BREAKER_OPENINGS.labels(model_version.key).inc,
                ),
                input_range=model_input_range(model_version),
            )
            _scorers[model_version.pk] = scorer
    return scorer


def features_score_live(*, features: Sequence[float], model_version: ModelVersion) -> LiveResult:
    """Score one feature vector now; a fallback result (label None) means humans must decide."""
    try:
        scorer = live_scorer(model_version)
    except Exception as exc:
        log.warning("live model %s unavailable: %s", model_version.key, exc)
        return LiveResult(None, None, None, 0.0, f"model unavailable: {type(exc).__name__}")
    return scorer.score(features)


def features_score_live_batch(
    *, rows: Sequence[Sequence[float]] | np.ndarray, model_version: ModelVersion
) -> list[LiveResult]:
    """Score many feature vectors now, a chunk per model call, each call within the budget.

    rows may be a float matrix of features already checked (see LiveScorer.score_batch).
    """
    try:
        scorer = live_scorer(model_version)
    except Exception as exc:
        log.warning("live model %s unavailable: %s", model_version.key, exc)
        reason = f"model unavailable: {type(exc).__name__}"
        return [LiveResult(None, None, None, 0.0, reason) for _ in rows]
    return scorer.score_batch(rows, chunk_rows=settings.SHADOWLAB["LIVE_BATCH_ROWS"])


def item_score_live(*, item: Item, model_version: ModelVersion) -> LiveResult:
    """Score one item now; a fallback result (label None) means humans must decide it."""
    return features_score_live(features=item.features, model_version=model_version)


def live_preload() -> int:
    """Load and warm the models that decide items (canary, live) or may at once (standby).

    Return how many were loaded.
    """
    try:
        versions = list(
            ModelVersion.objects.filter(
                deployments__role__in=[
                    Deployment.Role.CANARY,
                    Deployment.Role.LIVE,
                    Deployment.Role.STANDBY,
                ]
            ).distinct()
        )
    except DatabaseError as exc:  # not migrated yet, or the database is down: load lazily
        log.warning("live models not pre-loaded: %s", exc)
        return 0
    loaded = 0
    for version in versions:
        try:
            live_scorer(version)
            loaded += 1
        except Exception as exc:
            log.warning("live model %s not pre-loaded: %s", version.key, exc)
    return loaded


def live_scorer_loaded(model_version: ModelVersion) -> bool:
    """Return whether this process has the version's scorer loaded and warmed."""
    return model_version.pk in _scorers


def live_scorers_clear() -> None:
    with _lock:
        for scorer in _scorers.values():
            scorer.close()
        _scorers.clear()


def _forget_after_fork() -> None:
    # A forked child has none of its parent's threads: the scorers' pools would never run a
    # call, so every item would time out. The child loads its own (the runners stay cached).
    global _lock
    _scorers.clear()
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
