"""Route new items at intake: the routing table, the routing rules and live scoring together.

Nothing here writes: intake calls `items_route` before it opens its transaction (model
scoring is the slow part), then stores each item with its route and `ItemRoute.decision_row`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import ModuleType

import numpy as np
from django.utils import timezone

from deployments import live, routing, routing_table
from deployments.live_runtime import LiveResult
from deployments.models import Decision, ModelVersion
from inspections.models import Item, Queue

REASON_MAX = Decision._meta.get_field("reason").max_length or 300


@dataclass(frozen=True)
class ItemRoute:
    """Where one new item goes, and what the version asked to decide it said."""

    route: routing.RouteDecision
    model_version: ModelVersion | None = None
    role: str = ""
    label: str = ""
    confidence: float | None = None
    latency_ms: float = 0.0
    reason: str = ""
    decided_at: datetime | None = None

    @property
    def decided_by_model(self) -> bool:
        return self.route.outcome == routing.DECIDED

    def decision_row(self, item: Item) -> Decision | None:
        """Return the item's unsaved Decision row, or None when no model was asked."""
        if self.model_version is None or not self.route.outcome:
            return None
        return Decision(
            item=item,
            model_version=self.model_version,
            role=self.role,
            outcome=self.route.outcome,
            label=self.label,
            confidence=self.confidence,
            latency_ms=self.latency_ms,
            reason=self.reason[:REASON_MAX],
            created_at=self.decided_at or timezone.now(),
        )


@dataclass(frozen=True)
class RoutedItems:
    """The routes of a set of new items, and every version to queue them for after commit."""

    routes: list[ItemRoute]
    scoring_version_ids: tuple[int, ...]


def _policy(queue: Queue) -> routing.Policy:
    return routing.Policy(
        audit_rate=queue.audit_rate,
        deferral_threshold=queue.deferral_threshold,
        double_inspection_rate=queue.double_inspection_rate,
        panel_size=queue.panel_size,
    )


def items_route(
    *,
    queue: Queue,
    entries: Sequence[tuple[str, list[float]]],
    rng: random.Random | ModuleType = random,
    routing_version: int | None = None,
) -> RoutedItems:
    """Route validated (external_id, features) entries; score those a model is asked to decide.

    Every entry gets a route: the model's decision, or inspectors with a note saying why
    (kill switch, deferral, error, timeout, open breaker, a version this process could not
    load). Entries a version decides are scored a chunk per model call. routing_version is
    the queue's, if the caller read it with the queue.
    """
    table = routing_table.queue_routing(queue_id=queue.pk, routing_version=routing_version)
    state = table.state
    choices = [
        routing.version_choose(state=state, queue_id=queue.pk, external_id=external_id)
        for external_id, _ in entries
    ]
    answers: list[LiveResult | None] = [None] * len(entries)
    by_version: dict[int, list[int]] = {}
    for index, choice in enumerate(choices):
        if choice.model_version_id is not None:
            by_version.setdefault(choice.model_version_id, []).append(index)
    for version_id, indices in by_version.items():
        results = _score(table.version(version_id), [entries[index][1] for index in indices])
        for index, result in zip(indices, results, strict=True):
            answers[index] = result
    decided_at = timezone.now()
    policy = _policy(queue)
    routes = []
    for (external_id, _), choice, answer in zip(entries, choices, answers, strict=True):
        routed = table.version(choice.model_version_id) if choice.model_version_id else None
        model_key = routed.model_version.key if routed else ""
        route = routing.route_settle(
            choice=choice,
            answer=_answer(answer),
            model_key=model_key,
            policy=policy,
            queue_id=queue.pk,
            external_id=external_id,
            rng=rng,
        )
        if routed is None or answer is None:
            routes.append(ItemRoute(route))
            continue
        routes.append(
            ItemRoute(
                route=route,
                model_version=routed.model_version,
                role=choice.role,
                label=answer.label or "",
                confidence=answer.confidence,
                latency_ms=answer.latency_ms,
                reason=answer.fallback_reason or ("no answer" if answer.label is None else ""),
                decided_at=decided_at,
            )
        )
    return RoutedItems(routes, table.scoring_version_ids)


def _score(routed: routing_table.RoutedVersion, rows: list[list[float]]) -> list[LiveResult]:
    if routed.load_problem:
        reason = f"model unavailable: {routed.load_problem}"
        return [LiveResult(None, None, None, 0.0, reason) for _ in rows]
    if len(rows) == 1:
        return [live.features_score_live(features=rows[0], model_version=routed.model_version)]
    # Intake validated every value: one matrix, checked at once, not value by value (float64,
    # so that a value float32 cannot hold is refused by the input range check by name).
    return live.features_score_live_batch(
        rows=np.asarray(rows, dtype=np.float64), model_version=routed.model_version
    )


def _answer(result: LiveResult | None) -> routing.ModelAnswer | None:
    if result is None:
        return None
    return routing.ModelAnswer(result.label, result.confidence, result.fallback_reason)


def decision_public(decision: Decision) -> dict[str, object]:
    """Return a model decision as API clients read it: label, model key and confidence."""
    return {
        "label": decision.label,
        "model": decision.model_version.key,
        "confidence": decision.confidence,
    }
