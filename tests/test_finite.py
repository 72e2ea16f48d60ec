import math

from hypothesis import given
from hypothesis import strategies as st

from shadowlab.finite import NOT_A_NUMBER, NOT_FINITE, finite_number_problem, is_finite_number


def test_finite_ints_and_floats_pass():
    assert finite_number_problem(3) is None
    assert finite_number_problem(-0.5) is None


def test_bools_strings_and_none_are_not_numbers():
    for value in (True, False, "1", None, [1.0]):
        assert finite_number_problem(value) == NOT_A_NUMBER


def test_nan_infinities_and_ints_too_large_for_a_float_are_not_finite():
    for value in (math.nan, math.inf, -math.inf, 10**400):
        assert finite_number_problem(value) == NOT_FINITE


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_float_passes_exactly_when_math_calls_it_finite(value):
    assert is_finite_number(value) == math.isfinite(value)
