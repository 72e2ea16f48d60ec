"""Cells of the CSV exports, safe to open in a spreadsheet (no Django import).

A spreadsheet runs a text cell that starts with = + - @ (or a tab or carriage return before
one) as a formula: an external_id, a user name or a note written by someone else could then
compute, fetch or link when an ml_lead opens the export. As OWASP's "CSV Injection" page
recommends, such a cell gets a leading single quote, which spreadsheets show as text and do
not evaluate. Numbers are written as numbers: only text is changed.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell_safe(value: object) -> object:
    """Return the value as a CSV cell: text a spreadsheet would evaluate gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row_safe(row: Iterable[object]) -> list[object]:
    """Return a row with every text cell made safe by csv_cell_safe."""
    return [csv_cell_safe(value) for value in row]


class _Echo:
    """A file-like object whose write returns the line, for csv.writer into a stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Yield each row as one line of CSV, every text cell made safe, for a streamed export."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow(csv_row_safe(row))
