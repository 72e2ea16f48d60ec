"""Every legal move of a model version's rollout role, and why any other is refused (no Django).

One table: a move is legal from the roles it names and nowhere else; every illegal
(role, move) pair has its own reason sentence. `transition_plan` turns a legal move into
the role changes of every version it touches on the queue, in an order that keeps the
database's one-live, one-canary and one-standby constraints true after each statement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

NOT_DEPLOYED = "not_deployed"
SHADOW = "shadow"
CANARY = "canary"
LIVE = "live"
STANDBY = "standby"
RETIRED = "retired"
ROLES = (NOT_DEPLOYED, SHADOW, CANARY, LIVE, STANDBY, RETIRED)

SHADOW_START = "shadow_start"
CANARY_START = "canary_start"
CANARY_SHARE_RAISE = "canary_share_raise"
LIVE_SWITCH = "live_switch"
ROLLBACK = "rollback"
RETIRE = "retire"


class TransitionRefused(ValueError):
    """The move is not legal for the version now; nothing changed."""


@dataclass(frozen=True)
class Move:
    """A named move: the roles it starts from and the role it ends in."""

    name: str
    sources: frozenset[str]
    target: str
    description: str


MOVES: dict[str, Move] = {
    move.name: move
    for move in (
        Move(
            SHADOW_START,
            frozenset({NOT_DEPLOYED, RETIRED}),
            SHADOW,
            "score every new item in the background and decide none",
        ),
        Move(CANARY_START, frozenset({SHADOW}), CANARY, "decide a share of the new items"),
        Move(CANARY_SHARE_RAISE, frozenset({CANARY}), CANARY, "decide a larger share"),
        Move(
            LIVE_SWITCH,
            frozenset({CANARY}),
            LIVE,
            "decide every new item; the live version becomes the standby, the old standby retires",
        ),
        Move(
            ROLLBACK,
            frozenset({CANARY, LIVE}),
            SHADOW,
            "stop deciding and go back to shadow; a rolled-back live version's standby goes live",
        ),
        Move(
            RETIRE,
            frozenset({SHADOW, STANDBY}),
            RETIRED,
            "stop scoring; the predictions stay for the record",
        ),
    )
}

_GO_THROUGH = "a version goes live through shadow and canary first"
_ONLY_CANARY_RAISES = "only a canary's share can be raised"

# Why each illegal (role, move) pair is refused; {version} and {queue} are filled in.
REFUSALS: dict[tuple[str, str], str] = {
    (SHADOW, SHADOW_START): "{version} is already in shadow on {queue}",
    (CANARY, SHADOW_START): "{version} is canary on {queue}; roll it back before putting it "
    "in shadow",
    (LIVE, SHADOW_START): "{version} is live on {queue}; roll it back before putting it in shadow",
    (STANDBY, SHADOW_START): "{version} is the standby on {queue}; a standby goes live again "
    "when the live version is rolled back, or it is retired",
    (NOT_DEPLOYED, CANARY_START): "{version} is not deployed on {queue}; a canary starts from "
    "shadow, so put it in shadow first",
    (CANARY, CANARY_START): "{version} is already canary on {queue}; raise its share instead",
    (LIVE, CANARY_START): "{version} is already live on {queue}",
    (STANDBY, CANARY_START): "{version} is the standby on {queue}; it goes live again only when "
    "the live version is rolled back",
    (RETIRED, CANARY_START): "{version} is retired on {queue}; put it in shadow again and let "
    "the gate judge it there",
    (NOT_DEPLOYED, CANARY_SHARE_RAISE): "{version} is not deployed on {queue}; "
    + _ONLY_CANARY_RAISES,
    (SHADOW, CANARY_SHARE_RAISE): "{version} is in shadow on {queue}; start it as a canary "
    "before raising its share",
    (LIVE, CANARY_SHARE_RAISE): "{version} is live on {queue} and decides every item already",
    (STANDBY, CANARY_SHARE_RAISE): "{version} is the standby on {queue}; " + _ONLY_CANARY_RAISES,
    (RETIRED, CANARY_SHARE_RAISE): "{version} is retired on {queue}; " + _ONLY_CANARY_RAISES,
    (NOT_DEPLOYED, LIVE_SWITCH): "{version} is not deployed on {queue}; " + _GO_THROUGH,
    (SHADOW, LIVE_SWITCH): "a shadow version goes live through canary first: start {version} "
    "as a canary on {queue}",
    (LIVE, LIVE_SWITCH): "{version} is already live on {queue}",
    (STANDBY, LIVE_SWITCH): "{version} is the standby on {queue}; it goes live again only when "
    "the live version is rolled back",
    (RETIRED, LIVE_SWITCH): "{version} is retired on {queue}; " + _GO_THROUGH,
    (NOT_DEPLOYED, ROLLBACK): "{version} is not deployed on {queue}; there is nothing to roll back",
    (SHADOW, ROLLBACK): "{version} is in shadow on {queue} and decides nothing; there is nothing "
    "to roll back",
    (STANDBY, ROLLBACK): "{version} is the standby on {queue}; roll back the live version to put "
    "the standby live again",
    (RETIRED, ROLLBACK): "{version} is retired on {queue}; there is nothing to roll back",
    (NOT_DEPLOYED, RETIRE): "{version} is not deployed on {queue}",
    (CANARY, RETIRE): "{version} is canary on {queue}: a canary model must be rolled back, "
    "not retired",
    (LIVE, RETIRE): "{version} is live on {queue}: a live model must be rolled back, not retired",
    (RETIRED, RETIRE): "{version} is already retired on {queue}",
}


@dataclass(frozen=True)
class QueueRoles:
    """Which version holds each single-holder role on a queue (keys), and the canary's share."""

    live: str | None = None
    canary: str | None = None
    canary_share: float = 0.0
    standby: str | None = None


@dataclass(frozen=True)
class RoleChange:
    """One version's change of role within a move, with its new share of decided items."""

    version: str
    before: str
    after: str
    share: float


def moves_allowed(role: str) -> tuple[str, ...]:
    """Return the names of the moves legal from a role, in the table's order."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return tuple(name for name, move in MOVES.items() if role in move.sources)


def role_share(role: str, share: float | None = None) -> float:
    """Return the share of new items a version in this role decides."""
    if role == LIVE:
        return 1.0
    if role == CANARY:
        if share is None:
            raise ValueError("a canary's share is needed")
        return share
    return 0.0


def transition_check(
    *,
    move: str,
    role: str,
    version: str,
    queue: str,
    share: float | None = None,
    current_share: float = 0.0,
    roles: QueueRoles | None = None,
) -> Move:
    """Return the move if it is legal for a version in this role now; raise TransitionRefused.

    share is the canary share a canary_start or canary_share_raise asks for; current_share
    is the version's share now; roles says who else holds a role on the queue.
    """
    if move not in MOVES:
        raise TransitionRefused(f"unknown move {move!r}; expected one of {', '.join(MOVES)}")
    if role not in ROLES:
        raise TransitionRefused(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if role not in MOVES[move].sources:
        raise TransitionRefused(REFUSALS[(role, move)].format(version=version, queue=queue))
    roles = roles or QueueRoles()
    if move in (CANARY_START, CANARY_SHARE_RAISE) and (
        share is None or not math.isfinite(share) or not 0 < share < 1
    ):
        raise TransitionRefused(
            f"a canary decides a share of the items strictly between 0 and 1, such as 0.05; "
            f"got {share}"
        )
    if move == CANARY_START and roles.canary not in (None, version):
        raise TransitionRefused(
            f"{queue} already has a canary, {roles.canary}; roll it back or switch it live "
            "before starting another"
        )
    if move == CANARY_SHARE_RAISE and share is not None and share <= current_share:
        raise TransitionRefused(
            f"{version} already decides {current_share:.1%} of the items on {queue}; a raise "
            f"needs a larger share, got {share:.1%}"
        )
    return MOVES[move]


def transition_plan(
    *,
    move: str,
    role: str,
    version: str,
    queue: str,
    share: float | None = None,
    current_share: float = 0.0,
    roles: QueueRoles | None = None,
) -> tuple[RoleChange, ...]:
    """Return every role change a legal move makes on the queue, in a safe order to apply.

    A live switch retires the old standby, makes the live version the standby, then puts
    the canary live (one standby per queue). Rolling back a live version puts it in
    shadow, then its standby, if any, live again.
    """
    roles = roles or QueueRoles()
    target = transition_check(
        move=move,
        role=role,
        version=version,
        queue=queue,
        share=share,
        current_share=current_share,
        roles=roles,
    ).target
    changes: list[RoleChange] = []
    if move == LIVE_SWITCH:
        if roles.standby is not None:
            changes.append(RoleChange(roles.standby, STANDBY, RETIRED, 0.0))
        if roles.live is not None and roles.live != version:
            changes.append(RoleChange(roles.live, LIVE, STANDBY, 0.0))
    changes.append(RoleChange(version, role, target, role_share(target, share)))
    if move == ROLLBACK and role == LIVE and roles.standby is not None:
        changes.append(RoleChange(roles.standby, STANDBY, LIVE, 1.0))
    return tuple(changes)


def promotion_move(*, role: str, target: str) -> str:
    """Return the move a promotion to target (canary or live) makes from a role."""
    if target == CANARY:
        return CANARY_SHARE_RAISE if role == CANARY else CANARY_START
    if target == LIVE:
        return LIVE_SWITCH
    raise ValueError(f"a promotion goes to canary or live, not {target!r}")
