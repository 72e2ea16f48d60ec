"""The rollout table: each (role, move) pair is legal with its result or refused with a reason."""

from __future__ import annotations

import subprocess
import sys

import pytest

from deployments.transitions import (
    CANARY,
    CANARY_SHARE_RAISE,
    CANARY_START,
    LIVE,
    LIVE_SWITCH,
    MOVES,
    NOT_DEPLOYED,
    REFUSALS,
    RETIRE,
    RETIRED,
    ROLES,
    ROLLBACK,
    SHADOW,
    SHADOW_START,
    STANDBY,
    QueueRoles,
    RoleChange,
    TransitionRefused,
    moves_allowed,
    promotion_move,
    transition_check,
    transition_plan,
)

# The whole state machine, written out once more by hand: (role, move) -> role after.
LEGAL = {
    (NOT_DEPLOYED, SHADOW_START): SHADOW,
    (RETIRED, SHADOW_START): SHADOW,
    (SHADOW, CANARY_START): CANARY,
    (CANARY, CANARY_SHARE_RAISE): CANARY,
    (CANARY, LIVE_SWITCH): LIVE,
    (CANARY, ROLLBACK): SHADOW,
    (LIVE, ROLLBACK): SHADOW,
    (SHADOW, RETIRE): RETIRED,
    (STANDBY, RETIRE): RETIRED,
}
ALL_PAIRS = [(role, move) for role in ROLES for move in MOVES]
ILLEGAL = [pair for pair in ALL_PAIRS if pair not in LEGAL]
# A share each move may ask for from the role's usual share: a canary at 10% raises to 20%.
SHARE_ASKED = {CANARY_START: 0.05, CANARY_SHARE_RAISE: 0.2}
CURRENT_SHARE = {CANARY: 0.1, LIVE: 1.0}


def _roles_for(role: str) -> QueueRoles:
    """The queue as it is when the version "v:1" holds this role and nobody else holds one."""
    return QueueRoles(
        live="v:1" if role == LIVE else None,
        canary="v:1" if role == CANARY else None,
        canary_share=CURRENT_SHARE.get(role, 0.0) if role == CANARY else 0.0,
        standby="v:1" if role == STANDBY else None,
    )


def _plan(role: str, move: str) -> tuple[RoleChange, ...]:
    return transition_plan(
        move=move,
        role=role,
        version="v:1",
        queue="digits",
        share=SHARE_ASKED.get(move),
        current_share=CURRENT_SHARE.get(role, 0.0),
        roles=_roles_for(role),
    )


def test_the_table_has_six_roles_and_six_named_moves():
    assert len(ROLES) == 6
    assert set(MOVES) == {
        SHADOW_START,
        CANARY_START,
        CANARY_SHARE_RAISE,
        LIVE_SWITCH,
        ROLLBACK,
        RETIRE,
    }
    assert len(LEGAL) + len(ILLEGAL) == 36


@pytest.mark.parametrize(("role", "move"), list(LEGAL), ids=lambda p: str(p))
def test_each_legal_move_takes_the_version_to_its_role_with_its_share(role, move):
    plan = _plan(role, move)
    own = [change for change in plan if change.version == "v:1"]
    assert len(own) == 1
    after = LEGAL[(role, move)]
    expected_share = {CANARY: SHARE_ASKED.get(move), LIVE: 1.0}.get(after, 0.0)
    assert own[0] == RoleChange("v:1", role, after, expected_share)


@pytest.mark.parametrize(("role", "move"), ILLEGAL, ids=lambda p: str(p))
def test_each_illegal_move_is_refused_with_its_own_reason(role, move):
    with pytest.raises(TransitionRefused) as refused:
        _plan(role, move)
    reason = str(refused.value)
    assert reason == REFUSALS[(role, move)].format(version="v:1", queue="digits")
    assert "v:1" in reason or "shadow version" in reason


def test_every_illegal_pair_and_no_legal_one_has_a_reason_sentence():
    assert set(REFUSALS) == set(ILLEGAL)
    assert all(len(reason.split()) >= 4 for reason in REFUSALS.values())


@pytest.mark.parametrize("role", ROLES)
def test_moves_allowed_lists_exactly_the_legal_moves_from_a_role(role):
    assert set(moves_allowed(role)) == {move for (r, move) in LEGAL if r == role}


def test_moves_allowed_refuses_an_unknown_role():
    with pytest.raises(ValueError, match="unknown role 'paused'"):
        moves_allowed("paused")


def test_an_unknown_move_or_role_is_refused_by_name():
    with pytest.raises(TransitionRefused, match="unknown move 'promote'"):
        transition_check(move="promote", role=SHADOW, version="v:1", queue="digits")
    with pytest.raises(TransitionRefused, match="unknown role 'paused'"):
        transition_check(move=RETIRE, role="paused", version="v:1", queue="digits")


def test_a_shadow_version_is_told_to_go_through_canary_before_live():
    with pytest.raises(TransitionRefused, match="a shadow version goes live through canary first"):
        transition_check(move=LIVE_SWITCH, role=SHADOW, version="v:1", queue="digits")


@pytest.mark.parametrize("share", [None, 0.0, 1.0, 1.5, -0.1, float("nan"), float("inf")])
def test_a_canary_start_needs_a_share_strictly_between_0_and_1(share):
    with pytest.raises(TransitionRefused, match="strictly between 0 and 1"):
        transition_check(move=CANARY_START, role=SHADOW, version="v:1", queue="digits", share=share)


@pytest.mark.parametrize("share", [0.05, 0.1, 1.0])
def test_a_share_raise_needs_a_larger_share_below_1(share):
    with pytest.raises(TransitionRefused):
        transition_check(
            move=CANARY_SHARE_RAISE,
            role=CANARY,
            version="v:1",
            queue="digits",
            share=share,
            current_share=0.1,
        )


def test_a_share_raise_names_the_current_share():
    with pytest.raises(TransitionRefused, match=r"already decides 10\.0% .* needs a larger"):
        transition_check(
            move=CANARY_SHARE_RAISE,
            role=CANARY,
            version="v:1",
            queue="digits",
            share=0.05,
            current_share=0.1,
        )


def test_a_second_canary_on_a_queue_is_refused_and_the_first_named():
    with pytest.raises(TransitionRefused, match="digits already has a canary, v:0"):
        transition_check(
            move=CANARY_START,
            role=SHADOW,
            version="v:1",
            queue="digits",
            share=0.05,
            roles=QueueRoles(canary="v:0", canary_share=0.1),
        )


def test_a_live_switch_retires_the_old_standby_and_makes_the_live_version_standby_first():
    plan = transition_plan(
        move=LIVE_SWITCH,
        role=CANARY,
        version="v:3",
        queue="digits",
        current_share=0.2,
        roles=QueueRoles(live="v:2", canary="v:3", canary_share=0.2, standby="v:1"),
    )
    assert plan == (
        RoleChange("v:1", STANDBY, RETIRED, 0.0),
        RoleChange("v:2", LIVE, STANDBY, 0.0),
        RoleChange("v:3", CANARY, LIVE, 1.0),
    )


def test_a_first_live_switch_displaces_nobody():
    plan = transition_plan(
        move=LIVE_SWITCH,
        role=CANARY,
        version="v:1",
        queue="digits",
        current_share=0.2,
        roles=QueueRoles(canary="v:1", canary_share=0.2),
    )
    assert plan == (RoleChange("v:1", CANARY, LIVE, 1.0),)


def test_rolling_back_a_live_version_puts_its_standby_live_after_it_leaves():
    plan = transition_plan(
        move=ROLLBACK,
        role=LIVE,
        version="v:2",
        queue="digits",
        current_share=1.0,
        roles=QueueRoles(live="v:2", standby="v:1"),
    )
    assert plan == (RoleChange("v:2", LIVE, SHADOW, 0.0), RoleChange("v:1", STANDBY, LIVE, 1.0))


def test_rolling_back_a_canary_leaves_the_live_version_and_standby_alone():
    plan = transition_plan(
        move=ROLLBACK,
        role=CANARY,
        version="v:3",
        queue="digits",
        current_share=0.2,
        roles=QueueRoles(live="v:2", canary="v:3", canary_share=0.2, standby="v:1"),
    )
    assert plan == (RoleChange("v:3", CANARY, SHADOW, 0.0),)


@pytest.mark.parametrize(
    ("role", "target", "move"),
    [
        (SHADOW, CANARY, CANARY_START),
        (CANARY, CANARY, CANARY_SHARE_RAISE),
        (CANARY, LIVE, LIVE_SWITCH),
        (SHADOW, LIVE, LIVE_SWITCH),
    ],
)
def test_a_promotion_target_maps_to_the_move_from_the_role(role, target, move):
    assert promotion_move(role=role, target=target) == move


def test_the_transition_table_imports_no_django():
    script = (
        "import sys, deployments.transitions\n"
        "print(','.join(m for m in sys.modules if m == 'django' or m.startswith('django.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
