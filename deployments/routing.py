"""Decide who decides a new item, from the queue's rollout state."""

from __future__ import annotations

import random
from dataclasses import dataclass
from types import ModuleType

from inspections.models import Item, Queue


@dataclass(frozen=True)
class RouteDecision:
    route: str
    judgments_needed: int
    human_status: str


def route_decide(*, queue: Queue, rng: random.Random | ModuleType = random) -> RouteDecision:
    """Route a new item to humans, sampling the queue's share for double inspection.

    An item selected for double inspection goes to the queue's panel of inspectors.

    Model versions in shadow never decide, so while a queue has no canary or live model
    every item is decided by inspectors.
    """
    double = rng.random() < queue.double_inspection_rate
    return RouteDecision(
        route=Item.Route.HUMAN,
        judgments_needed=queue.panel_size if double else 1,
        human_status=Item.HumanStatus.PENDING,
    )
