"""Decide who decides a new item, from the queue's rollout state (no Django import).

Two questions per item, each answered by its own stable hash of (queue, external_id):
which model version decides it (the canary for its share, the live version for the rest),
and whether a model-decided item also goes to inspectors, blind, as an audit sample.
Hashes, not a random draw, so that a retried request routes the same way. Whether an item
goes to a panel for double inspection stays a random draw at the queue's rate.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from types import ModuleType

# Values of inspections.Item.Route, HumanStatus and deployments.Decision.Role / Outcome.
HUMAN, MODEL = "human", "model"
PENDING, NOT_NEEDED = "pending", "not_needed"
CANARY, LIVE = "canary", "live"
DECIDED, DEFERRED, FAILED = "decided", "deferred", "failed"

ROUTE_NOTE_MAX = 200
KILL_SWITCH_NOTE = "kill switch on"

_SALT_VERSION = b"route-version"
_SALT_AUDIT = b"route-audit"
# 2**64, as a float: the hash's 8 bytes read as an integer, divided by this, lie in [0, 1).
_SPAN = float(1 << 64)


def unit_hash(queue_id: int, external_id: str, salt: bytes) -> float:
    """Return a number in [0, 1), uniform over external ids and the same for the same inputs.

    BLAKE2b keyed by the salt: Python's hash() of a string changes between processes.
    """
    digest = hashlib.blake2b(
        f"{queue_id}\x1f{external_id}".encode(), digest_size=8, key=salt
    ).digest()
    return int.from_bytes(digest, "big") / _SPAN


def canary_chosen(*, queue_id: int, external_id: str, share: float) -> bool:
    """Return whether the canary, rather than the live version, decides this item."""
    return unit_hash(queue_id, external_id, _SALT_VERSION) < share


def audit_chosen(*, queue_id: int, external_id: str, rate: float) -> bool:
    """Return whether a model-decided item is also sent to inspectors as an audit sample.

    Its own salt, so the audit sample is independent of the canary's share.
    """
    return unit_hash(queue_id, external_id, _SALT_AUDIT) < rate


@dataclass(frozen=True)
class RolloutState:
    """What routing needs of a queue's rollout: who may decide, and the kill switch."""

    live: int | None = None  # model version id
    canary: int | None = None
    canary_share: float = 0.0
    kill_switch: bool = False


@dataclass(frozen=True)
class VersionChoice:
    """The version asked to decide an item (None: inspectors decide), and why not if None."""

    model_version_id: int | None
    role: str = ""  # canary or live
    route_note: str = ""


def version_choose(*, state: RolloutState, queue_id: int, external_id: str) -> VersionChoice:
    """Pick the version that decides a new item, or none (inspectors)."""
    if state.live is None and state.canary is None:
        return VersionChoice(None)
    if state.kill_switch:
        return VersionChoice(None, route_note=KILL_SWITCH_NOTE)
    if state.canary is not None and canary_chosen(
        queue_id=queue_id, external_id=external_id, share=state.canary_share
    ):
        return VersionChoice(state.canary, CANARY)
    if state.live is not None:
        return VersionChoice(state.live, LIVE)
    # The canary's complement while there is no live version: inspectors, as before it.
    return VersionChoice(None)


@dataclass(frozen=True)
class ModelAnswer:
    """What the chosen version said: a label and confidence, or why it could not answer."""

    label: str | None
    confidence: float | None
    failure: str = ""  # error, timeout, open breaker, invalid features, not loaded


@dataclass(frozen=True)
class Policy:
    """The queue's settings routing applies."""

    audit_rate: float
    deferral_threshold: float
    double_inspection_rate: float
    panel_size: int


@dataclass(frozen=True)
class RouteDecision:
    """Where a new item goes and what inspectors owe it; outcome is the model's, if asked."""

    route: str
    judgments_needed: int
    human_status: str
    audit_sample: bool = False
    route_note: str = ""
    outcome: str = ""  # decided, deferred or failed; empty when no model was asked


def _human(policy: Policy, rng: random.Random | ModuleType, note: str = "") -> RouteDecision:
    double = rng.random() < policy.double_inspection_rate
    return RouteDecision(
        route=HUMAN,
        judgments_needed=policy.panel_size if double else 1,
        human_status=PENDING,
        route_note=note[:ROUTE_NOTE_MAX],
    )


def route_settle(
    *,
    choice: VersionChoice,
    answer: ModelAnswer | None,
    model_key: str,
    policy: Policy,
    queue_id: int,
    external_id: str,
    rng: random.Random | ModuleType = random,
) -> RouteDecision:
    """Turn the version choice and its answer into the item's route; every item gets one.

    A confident answer is the model's decision (and maybe an audit sample, judged by one
    inspector who is not told); a less confident one than the queue's deferral threshold,
    or no answer, goes to inspectors with a note saying why.
    """
    if choice.model_version_id is None or answer is None:
        return _human(policy, rng, choice.route_note)
    if answer.label is None or answer.confidence is None:
        reason = answer.failure or "no answer"
        decision = _human(policy, rng, f"{model_key} failed: {reason}")
        return replace(decision, outcome=FAILED)
    if answer.confidence < policy.deferral_threshold:
        note = (
            f"deferred: {model_key} confidence {answer.confidence:.3f} is under the queue's "
            f"threshold {policy.deferral_threshold:.3f}"
        )
        return replace(_human(policy, rng, note), outcome=DEFERRED)
    if audit_chosen(queue_id=queue_id, external_id=external_id, rate=policy.audit_rate):
        return RouteDecision(MODEL, 1, PENDING, audit_sample=True, outcome=DECIDED)
    return RouteDecision(MODEL, 0, NOT_NEEDED, outcome=DECIDED)
