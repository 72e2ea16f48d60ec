"""The create_api_token and import_items management commands."""

from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from inspections import intake
from inspections.management.commands import import_items
from inspections.models import ApiToken, Item
from inspections.services import api_token_authenticate, item_create

pytestmark = pytest.mark.django_db

WIDTH = 64


def _run(*args: str, **options: Any) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def _row(external_id: str, value: float = 1.0, width: int = WIDTH) -> list[str]:
    return [external_id, *[f"{value + n / 100:g}" for n in range(width)]]


def _csv(tmp_path: Path, rows: list[list[str]], *, header: list[str] | None = None) -> Path:
    path = tmp_path / "items.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header or ["external_id", *[f"pixel_{n}" for n in range(WIDTH)]])
        writer.writerows(rows)
    return path


# create_api_token


def test_create_api_token_prints_a_token_that_authenticates_for_its_queue(queue, other_queue):
    out, err = _run("create_api_token", queue="digits", name="scanner 3")

    raw = out.strip()
    assert raw.startswith("slk_") and "\n" not in raw
    token = api_token_authenticate(raw)
    assert token is not None
    assert (token.queue, token.name) == (queue, "scanner 3")
    assert "cannot be shown again" in err
    assert raw not in err
    assert raw not in ApiToken.objects.values_list("token_hash", flat=True)
    # And it opens the API for that queue only.
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = {"external_id": "x", "features": [0] * WIDTH}
    assert client.post("/api/v1/queues/digits/items", body, "application/json").status_code == 201
    assert client.post("/api/v1/queues/parts/items", body, "application/json").status_code == 403


def test_create_api_token_makes_a_new_secret_each_time(queue):
    first, _ = _run("create_api_token", queue="digits")
    second, _ = _run("create_api_token", queue="digits")
    assert first != second
    assert ApiToken.objects.filter(queue=queue).count() == 2


def test_create_api_token_refuses_an_unknown_queue(db):
    with pytest.raises(CommandError, match="no queue with slug 'nope'"):
        _run("create_api_token", queue="nope")
    assert not ApiToken.objects.exists()


# import_items


def test_a_good_csv_is_imported_with_the_count(queue, tmp_path):
    path = _csv(tmp_path, [_row(f"scan-{n}", value=n) for n in range(25)])

    out, _ = _run("import_items", str(path), queue="digits")

    assert "Created 25 item(s) in queue digits." in out
    assert "Skipped 0 duplicate(s)" in out
    assert Item.objects.filter(queue=queue).count() == 25
    item = Item.objects.get(external_id="scan-3")
    assert item.features == pytest.approx([3 + n / 100 for n in range(WIDTH)])
    assert item.human_status == Item.HumanStatus.PENDING


class _Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_is_shown_on_a_terminal_and_not_in_a_pipe(queue, tmp_path):
    path = _csv(tmp_path, [_row(f"scan-{n}") for n in range(12)])
    terminal = _Terminal()
    call_command("import_items", str(path), queue="digits", stdout=StringIO(), stderr=terminal)
    assert "Importing" in terminal.getvalue()
    assert "12/12" in terminal.getvalue()

    _, piped = _run("import_items", str(path), queue="digits")
    assert "Importing" not in piped and "12/12" not in piped


def test_the_external_id_column_may_stand_anywhere_and_a_bom_and_blank_lines_are_ignored(
    queue, tmp_path
):
    path = tmp_path / "items.csv"
    header = [f"f{n}" for n in range(WIDTH)]
    header.insert(10, "external_id")
    values = [str(n) for n in range(WIDTH)]
    row = [*values[:10], "mid", *values[10:]]
    path.write_text("\ufeff" + ",".join(header) + "\n\n" + ",".join(row) + "\n\n")

    out, _ = _run("import_items", str(path), queue="digits")

    assert "Created 1 item(s)" in out
    assert Item.objects.get(external_id="mid").features == [float(n) for n in range(WIDTH)]


def test_a_csv_with_one_bad_row_stores_nothing_and_names_the_row(queue, tmp_path):
    rows = [_row("a"), _row("b"), _row("c"), _row("d")]
    rows[2][5] = "dark"  # the third data row, line 4 of the file
    path = _csv(tmp_path, rows)

    with pytest.raises(CommandError) as refused:
        _run("import_items", str(path), queue="digits")

    message = str(refused.value)
    assert "1 invalid row(s)" in message
    assert "nothing was imported" in message
    assert "row 3 (line 4): features[4] must be a number, got str 'dark'" in message
    assert not Item.objects.exists()


def test_every_bad_row_is_reported_but_only_twenty_are_listed(queue, tmp_path):
    rows = [_row(f"r{n}") for n in range(30)]
    for row in rows[5:]:
        row[1] = "nan"
    path = _csv(tmp_path, rows)

    with pytest.raises(CommandError) as refused:
        _run("import_items", str(path), queue="digits")

    message = str(refused.value)
    assert "25 invalid row(s)" in message
    assert message.count("must be finite") == 20
    assert "... and 5 more" in message
    assert not Item.objects.exists()


def test_skip_invalid_imports_the_valid_rows_and_lists_the_skipped(queue, tmp_path):
    rows = [_row("a"), _row("b"), _row("c", width=WIDTH - 1), _row("d"), _row("a")]
    rows[1][1] = "inf"
    path = _csv(tmp_path, rows)

    out, _ = _run("import_items", str(path), queue="digits", skip_invalid=True)

    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["a", "d"]
    assert "Created 2 item(s)" in out
    assert "Skipped 3 invalid row(s)" in out
    assert "row 2 (line 3): features[0] must be finite, got inf" in out
    assert "row 3 (line 4): features must have 64 values, got 63" in out
    assert "row 5 (line 6): external_id 'a' repeats an earlier row" in out


def test_duplicates_already_in_the_queue_are_skipped_and_reported(queue, tmp_path):
    item_create(queue=queue, external_id="old-1", features=[9.0] * WIDTH)
    item_create(queue=queue, external_id="old-2", features=[9.0] * WIDTH)
    path = _csv(tmp_path, [_row("old-1"), _row("new-1"), _row("old-2"), _row("new-2")])

    out, _ = _run("import_items", str(path), queue="digits")

    assert "Created 2 item(s)" in out
    assert "Skipped 2 duplicate(s) already in the queue" in out
    assert "old-1" in out and "old-2" in out
    assert Item.objects.get(external_id="old-1").features == [9.0] * WIDTH
    assert Item.objects.count() == 4


def test_importing_the_same_file_twice_creates_nothing_the_second_time(queue, tmp_path):
    path = _csv(tmp_path, [_row("a"), _row("b")])
    _run("import_items", str(path), queue="digits")

    out, _ = _run("import_items", str(path), queue="digits")

    assert "Created 0 item(s)" in out
    assert "Skipped 2 duplicate(s)" in out
    assert Item.objects.count() == 2


def test_a_dry_run_reports_and_stores_nothing(queue, tmp_path):
    item_create(queue=queue, external_id="old", features=[9.0] * WIDTH)
    rows = [_row("old"), _row("new-1"), _row("new-2"), _row("bad")]
    rows[3][64] = ""
    path = _csv(tmp_path, rows)

    out, _ = _run("import_items", str(path), queue="digits", dry_run=True, skip_invalid=True)

    assert "Dry run, nothing stored: 2 item(s) would be created" in out
    assert "1 duplicate(s) already in the queue would be skipped" in out
    assert "row 4 (line 5): features[63] must be a number, got str ''" in out
    assert list(Item.objects.values_list("external_id", flat=True)) == ["old"]


def test_a_dry_run_of_a_file_with_a_bad_row_fails_like_the_import_would(queue, tmp_path):
    rows = [_row("a"), _row("b")]
    rows[0][1] = "x"
    with pytest.raises(CommandError, match="row 1 \\(line 2\\)"):
        _run("import_items", str(_csv(tmp_path, rows)), queue="digits", dry_run=True)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (["id", *[f"f{n}" for n in range(WIDTH)]], "has no 'external_id' column"),
        (["external_id", *[f"f{n}" for n in range(WIDTH - 1)]], "has 63 feature columns"),
        (["external_id", *[f"f{n}" for n in range(WIDTH + 1)]], "has 65 feature columns"),
    ],
)
def test_a_header_that_does_not_fit_the_queue_is_a_clear_error(queue, tmp_path, header, problem):
    path = _csv(tmp_path, [_row("a")], header=header)
    with pytest.raises(CommandError, match=problem) as refused:
        _run("import_items", str(path), queue="digits")
    assert "64 features" in str(refused.value) or "external_id" in str(refused.value)
    assert not Item.objects.exists()


def test_an_empty_file_is_a_clear_error(queue, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(CommandError, match="is empty: its first line must be a header row"):
        _run("import_items", str(path), queue="digits")


def test_a_file_that_is_not_utf_8_text_is_a_clear_error(queue, tmp_path):
    path = tmp_path / "items.csv"
    path.write_bytes("external_id,a\n".encode("utf-16"))
    with pytest.raises(CommandError, match="cannot be read as UTF-8 CSV"):
        _run("import_items", str(path), queue="digits")


def test_a_missing_file_is_a_clear_error(queue, tmp_path):
    with pytest.raises(CommandError, match=r"missing\.csv is not a file"):
        _run("import_items", str(tmp_path / "missing.csv"), queue="digits")


def test_an_unknown_queue_is_a_clear_error(db, tmp_path):
    with pytest.raises(CommandError, match="no queue with slug 'nope'"):
        _run("import_items", str(_csv(tmp_path, [_row("a")])), queue="nope")


@pytest.mark.security
def test_rows_no_column_or_float_can_hold_are_named_and_skip_invalid_keeps_the_rest(
    queue, tmp_path
):
    rows = [_row("a"), _row("b\0c"), _row("d"), _row("e")]
    rows[3][1] = "1" * 400  # float() makes it inf: not finite
    path = _csv(tmp_path, rows)

    with pytest.raises(CommandError) as refused:
        _run("import_items", str(path), queue="digits")
    message = str(refused.value)
    assert "row 2 (line 3): external_id must not hold a NUL character" in message
    assert "row 4 (line 5): features[0] must be finite" in message
    assert not Item.objects.exists()

    out, _ = _run("import_items", str(path), queue="digits", skip_invalid=True)
    assert "Created 2 item(s)" in out
    assert sorted(Item.objects.values_list("external_id", flat=True)) == ["a", "d"]


@pytest.mark.security
def test_a_line_longer_than_the_cap_is_refused_without_reading_it_whole(
    queue, tmp_path, monkeypatch
):
    monkeypatch.setattr(import_items, "MAX_LINE_CHARS", 4096)
    path = _csv(tmp_path, [_row("a"), ["b", *["1"] * 5000]])

    with pytest.raises(CommandError, match="line 3 is longer than 4,096 characters"):
        _run("import_items", str(path), queue="digits")
    assert not Item.objects.exists()


@pytest.mark.security
def test_a_file_with_more_rows_than_the_cap_is_refused_and_nothing_is_stored(
    queue, tmp_path, monkeypatch
):
    monkeypatch.setattr(import_items, "MAX_ROWS", 3)
    path = _csv(tmp_path, [_row(f"r{n}") for n in range(4)])

    with pytest.raises(CommandError, match="more than 3 rows; split it"):
        _run("import_items", str(path), queue="digits")
    assert not Item.objects.exists()


@pytest.mark.security
def test_a_checked_file_is_stored_chunk_by_chunk_as_it_is_read(queue, monkeypatch):
    # The second pass of an import holds at most one chunk of rows: the first chunk is
    # stored before the rest of the rows are read.
    read = 0
    read_at_store: list[int] = []

    def rows():
        nonlocal read
        for n in range(25):
            read += 1
            yield f"r{n}", [1.0] * WIDTH

    real = intake.items_intake_batch

    def store(**kwargs):
        read_at_store.append(read)
        return real(**kwargs)

    monkeypatch.setattr(intake, "items_intake_batch", store)
    result = intake.items_create_bulk(queue=queue, rows=rows(), chunk_size=10, validated=True)

    assert result.created == 25
    assert read_at_store == [10, 20, 25]
