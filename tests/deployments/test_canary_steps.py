"""The canary ladder: steps checked, the next step proposed, a raise kept in order (no database)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployments.canary_steps import (
    DEFAULT_STEPS,
    ladder_text,
    share_check,
    step_index,
    step_next,
    steps_clean,
)
from deployments.transitions import TransitionRefused


def test_the_default_ladder_reads_as_people_say_it():
    assert ladder_text(DEFAULT_STEPS) == "5% → 25% → 50% → 100%"


def test_a_shadow_version_starts_at_the_first_step_and_a_canary_climbs_to_live():
    proposals = [step_next(steps=DEFAULT_STEPS, role="shadow")]
    for share in (0.05, 0.25, 0.5):
        proposals.append(step_next(steps=DEFAULT_STEPS, role="canary", share=share))
    assert [(p.target, p.share, p.index) for p in proposals] == [
        ("canary", 0.05, 0),
        ("canary", 0.25, 1),
        ("canary", 0.5, 2),
        ("live", 1.0, 3),
    ]


@pytest.mark.parametrize("role", ["not_deployed", "live", "standby", "retired"])
def test_other_roles_have_no_next_step(role):
    assert step_next(steps=DEFAULT_STEPS, role=role) is None


def test_a_share_between_steps_goes_on_to_the_step_above_and_is_off_the_ladder():
    assert step_next(steps=DEFAULT_STEPS, role="canary", share=0.1).share == 0.25
    assert step_index(steps=DEFAULT_STEPS, share=0.1) is None
    assert step_index(steps=DEFAULT_STEPS, share=0.25) == 1


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("0.05", "must be a list of shares"),
        ([1.0], "between 2 and 20 shares"),
        ([0.1] * 21, "between 2 and 20 shares"),
        ([0.0, 1.0], "above 0 and at most 1"),
        ([0.5, 1.5], "above 0 and at most 1"),
        ([True, 1.0], "must be a number"),
        ([float("nan"), 1.0], "must be a number"),
        ([0.5, 0.25, 1.0], "must increase step by step; 0.25 follows 0.5"),
        ([0.05, 0.5], "the last canary step is the live switch, 1"),
    ],
)
def test_a_ladder_that_is_not_one_is_refused_with_a_sentence(steps, message):
    with pytest.raises(ValueError, match=message):
        steps_clean(steps)


def test_a_ladder_of_whole_numbers_reads_as_floats():
    assert steps_clean([0.5, 1]) == (0.5, 1.0)


def test_a_raise_must_be_larger_and_the_refusal_names_the_next_step():
    with pytest.raises(TransitionRefused, match="its next step is 50%"):
        share_check(
            steps=DEFAULT_STEPS, role="canary", current_share=0.25, share=0.25, version="m:2"
        )
    share_check(steps=DEFAULT_STEPS, role="canary", current_share=0.25, share=0.3, version="m:2")
    # A shadow version may start at any share; the first step is only proposed.
    share_check(steps=DEFAULT_STEPS, role="shadow", current_share=0.0, share=0.5, version="m:2")


ladders = st.lists(
    st.floats(min_value=0.001, max_value=0.999), min_size=1, max_size=10, unique=True
).map(lambda shares: (*sorted(shares), 1.0))


@given(ladder=ladders, share=st.floats(min_value=0.0, max_value=0.999))
def test_the_next_step_of_a_canary_is_always_above_its_share_and_ends_live(ladder, share):
    try:
        steps = steps_clean(list(ladder))
    except ValueError:
        return  # two shares closer than a billionth: not a ladder
    proposal = step_next(steps=steps, role="canary", share=share)
    assert proposal is not None
    assert proposal.share > share
    assert proposal.is_live_switch == (proposal.share == 1.0)
    assert all(step <= share + 1e-9 for step in steps[: proposal.index])
