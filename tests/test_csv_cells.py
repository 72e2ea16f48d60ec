"""CSV cells safe to open in a spreadsheet: formula prefixes quoted, numbers left numbers."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shadowlab.csv_cells import FORMULA_STARTS, csv_cell_safe, csv_lines

pytestmark = pytest.mark.security


@pytest.mark.parametrize(
    "text",
    ["=1+1", "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1", '=HYPERLINK("http://x","y")'],
)
def test_text_starting_with_a_formula_prefix_gets_a_leading_quote(text):
    assert csv_cell_safe(text) == "'" + text


@pytest.mark.parametrize("text", ["scan-1", "", " =1", "1e9", "'=already", "a=b"])
def test_other_text_is_written_as_it_is(text):
    assert csv_cell_safe(text) == text


@pytest.mark.parametrize("number", [-1, -2.5, 0, 1e308, True])
def test_numbers_stay_numbers_even_when_negative(number):
    assert csv_cell_safe(number) is number


@given(st.lists(st.one_of(st.text(), st.floats(allow_nan=False), st.integers()), max_size=8))
def test_no_written_text_cell_starts_a_formula_and_every_cell_reads_back(row):
    (line,) = csv_lines([row])
    (read,) = csv.reader(io.StringIO(line, newline=""))
    assert len(read) == len(row)
    for written, given_value in zip(read, row, strict=True):
        if isinstance(given_value, str):
            assert not written.startswith(FORMULA_STARTS)
            assert written in (given_value, "'" + given_value)
        else:
            assert written == str(given_value)
