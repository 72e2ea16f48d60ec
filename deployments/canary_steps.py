"""A canary's ladder of shares: the next step, and whether a share may be asked for (no Django).

A queue's gate policy lists the shares a canary decides, step by step, default 5% → 25% →
50% → 100%; the last step, 1, is the live switch. A shadow version's first step is the
ladder's first share; a canary's next step is the first share above the one it decides.
People may still ask for a share of their own (say 10%): any share larger than the one
the canary decides now, since the steps propose the order, a raise never goes down.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from deployments.transitions import CANARY, LIVE, SHADOW, TransitionRefused

DEFAULT_STEPS = (0.05, 0.25, 0.5, 1.0)
MAX_STEPS = 20
# Shares are stored as floats; two shares closer than this are the same step.
SAME_SHARE = 1e-9


def share_text(share: float) -> str:
    """Return a share as people read it: 0.05 is "5%", 1 is "100%"."""
    return f"{share * 100:g}%"


def ladder_text(steps: tuple[float, ...]) -> str:
    """Return the ladder as one line: "5% → 25% → 50% → 100%"."""
    return " → ".join(share_text(step) for step in steps)


def steps_clean(steps: object) -> tuple[float, ...]:
    """Return the ladder as a tuple of shares; raise ValueError with a sentence if it is not one.

    A ladder has 2 to MAX_STEPS shares, each above 0 and at most 1, strictly increasing, and
    ends at 1 (the live switch), so that a canary has at least one step before going live.
    """
    if not isinstance(steps, list | tuple):
        raise ValueError("the canary steps must be a list of shares, such as [0.05, 0.25, 0.5, 1]")
    if not 2 <= len(steps) <= MAX_STEPS:
        raise ValueError(
            f"the canary steps need between 2 and {MAX_STEPS} shares (at least one canary step,"
            f" then 1 for the live switch); got {len(steps)}"
        )
    shares = []
    for step in steps:
        # JSON's true and false are not shares, whatever Python says.
        if isinstance(step, bool) or not isinstance(step, int | float) or not math.isfinite(step):
            raise ValueError(
                f"each canary step must be a number above 0 and at most 1; got {step!r}"
            )
        if not 0 < step <= 1:
            raise ValueError(f"each canary step must be above 0 and at most 1; got {step:g}")
        shares.append(float(step))
    for before, after in itertools.pairwise(shares):
        if after <= before + SAME_SHARE:
            raise ValueError(
                f"the canary steps must increase step by step; {after:g} follows {before:g}"
            )
    if shares[-1] != 1.0:
        raise ValueError(
            f"the last canary step is the live switch, 1; the steps end at {shares[-1]:g}"
        )
    return tuple(shares)


@dataclass(frozen=True)
class StepProposal:
    """The step a version takes next: canary at a share, or live (share 1) for the last step."""

    target: str
    share: float
    index: int  # the step's position on the ladder, from 0

    @property
    def is_live_switch(self) -> bool:
        return self.target == LIVE


def step_next(*, steps: tuple[float, ...], role: str, share: float = 0.0) -> StepProposal | None:
    """Return the step after the version's present one, None if its role has no next step.

    A shadow version's next step is the first; a canary's is the first step above its share
    (a share of its own between two steps goes on to the upper one). The last step is live.
    """
    if role == SHADOW:
        index = 0
    elif role == CANARY:
        above = [k for k, step in enumerate(steps) if step > share + SAME_SHARE]
        if not above:
            return None
        index = above[0]
    else:
        return None
    target = LIVE if index == len(steps) - 1 else CANARY
    return StepProposal(target=target, share=steps[index], index=index)


def step_index(*, steps: tuple[float, ...], share: float) -> int | None:
    """Return the position of the step equal to this share, None if the share is off the ladder."""
    for index, step in enumerate(steps):
        if abs(step - share) <= SAME_SHARE:
            return index
    return None


def share_check(
    *, steps: tuple[float, ...], role: str, current_share: float, share: float, version: str
) -> None:
    """Raise TransitionRefused unless a canary share asked for keeps the ladder's order.

    A canary's raise must be larger than the share it decides now; the message names the
    next step. A shadow version may start at any share (the first step is only proposed).
    """
    if role != CANARY or share > current_share + SAME_SHARE:
        return
    proposal = step_next(steps=steps, role=role, share=current_share)
    next_text = (
        "its next step is the live switch"
        if proposal is None or proposal.is_live_switch
        else f"its next step is {share_text(proposal.share)}"
    )
    raise TransitionRefused(
        f"{version} decides {share_text(current_share)} of the items already; a raise needs a "
        f"larger share, got {share_text(share)}: {next_text} (steps {ladder_text(steps)})"
    )
