"""manage.py import_items: load items for a queue from a CSV file (external_id + features)."""

from __future__ import annotations

import csv
import re
from argparse import ArgumentParser
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, OutputWrapper
from tqdm import tqdm

from inspections.models import Item, Queue
from inspections.services import BulkResult, items_create_bulk
from shadowlab import local_stack

ID_COLUMN = "external_id"
MAX_LISTED = 20
# A file is read line by line and never whole: a line longer than this (a file that is not
# an items CSV, or one without line breaks) is refused rather than read into memory.
MAX_LINE_CHARS = 1024 * 1024
# Rows one file may hold: their external ids are kept while it is read (for repeats).
MAX_ROWS = 1_000_000
_ROW_PREFIX = re.compile(r"^row (\d+): ")


def _number(field: str) -> float | str:
    """Return the field as a float, or unchanged so that validation names the bad value."""
    try:
        return float(field)
    except ValueError:
        return field


def _listing(lines: list[str]) -> str:
    shown = [f"  {line}" for line in lines[:MAX_LISTED]]
    if len(lines) > MAX_LISTED:
        shown.append(f"  ... and {len(lines) - MAX_LISTED:,} more")
    return "\n".join(shown)


class _BarStream:
    """Let tqdm draw on a command's stderr without the line ending and colour it adds."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, style_func=str, ending="")

    def flush(self) -> None:
        self.wrapper.flush()

    def isatty(self) -> bool:
        return self.wrapper.isatty()

    @property
    def encoding(self) -> str | None:  # tqdm draws a smooth bar only on a unicode stream
        return getattr(self.wrapper, "encoding", None)


def _bounded_lines(handle: TextIO, path: Path) -> Iterator[str]:
    """Yield the file's lines, raising CommandError at one longer than MAX_LINE_CHARS."""
    number = 0
    while line := handle.readline(MAX_LINE_CHARS + 1):
        number += 1
        if len(line) > MAX_LINE_CHARS:
            raise CommandError(
                f"{path} line {number:,} is longer than {MAX_LINE_CHARS:,} characters: "
                "not a CSV of items (one item per line)"
            )
        yield line


class CsvItems:
    """The data rows of an items CSV as (external_id, features), read lazily, once per pass.

    Checks the header on creation. Each pass remembers the file line and external_id of every
    row, so that the service's "row N" problems can name the line an editor shows.
    """

    def __init__(self, path: Path, *, width: int) -> None:
        self.path = path
        self.width = width
        self.skipped: set[int] = set()
        self.lines: list[int] = []
        self.external_ids: list[str] = []
        with self.unreadable_as_error(), self._open() as handle:
            header = next(csv.reader(_bounded_lines(handle, path)), None)
        names = [name.strip() for name in header or []]
        if not any(names):
            raise CommandError(f"{path} is empty: its first line must be a header row")
        if ID_COLUMN not in names:
            found = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            raise CommandError(f"{path} has no '{ID_COLUMN}' column in its header (found: {found})")
        self.id_index = names.index(ID_COLUMN)
        if len(names) - 1 != width:
            raise CommandError(
                f"{path} has {len(names) - 1} feature columns besides {ID_COLUMN}; "
                f"the queue's items have {width} features"
            )

    @contextmanager
    def unreadable_as_error(self) -> Iterator[None]:
        try:
            yield
        except (UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"{self.path} cannot be read as UTF-8 CSV: {exc}") from exc

    def _open(self) -> TextIO:
        # utf-8-sig drops the byte-order mark spreadsheets put before the header.
        return self.path.open(newline="", encoding="utf-8-sig")

    def estimate(self) -> int:
        """Return about how many data rows the file has, for the progress bar."""
        with self.path.open("rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
        return max(lines - 1 - len(self.skipped), 0)

    def __iter__(self) -> Iterator[tuple[str, object]]:
        self.lines, self.external_ids = [], []
        number = 0
        with self._open() as handle:
            reader = csv.reader(_bounded_lines(handle, self.path))
            next(reader, None)
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue  # a blank line is not a row
                number += 1
                if number > MAX_ROWS:
                    raise CommandError(
                        f"{self.path} has more than {MAX_ROWS:,} rows; split it into files "
                        "of at most that many and import each"
                    )
                if number in self.skipped:
                    continue
                external_id = fields[self.id_index] if self.id_index < len(fields) else ""
                if len(fields) != self.width + 1 and not external_id.strip():
                    # A short line without its id: give it one that names the line, so the
                    # service reports the wrong number of values rather than a missing id.
                    external_id = f"(line {reader.line_num})"
                self.lines.append(reader.line_num)
                self.external_ids.append(external_id.strip())
                features = fields[: self.id_index] + fields[self.id_index + 1 :]
                yield external_id, [_number(field) for field in features]

    def where(self, problem: str) -> str:
        """Add the file line to a service's 'row N: ...' message of the last pass."""
        match = _ROW_PREFIX.match(problem)
        if match is None or int(match.group(1)) > len(self.lines):
            return problem
        row = int(match.group(1))
        return f"row {row} (line {self.lines[row - 1]}): {problem[match.end() :]}"


def _row_numbers(problems: Iterable[str]) -> set[int]:
    return {int(match.group(1)) for match in map(_ROW_PREFIX.match, problems) if match}


class Command(BaseCommand):
    help = (
        "Import items into a queue from a CSV file: a header row with an external_id column "
        "and the feature columns, then one item per row. If any row is invalid nothing is "
        "stored, unless --skip-invalid is given."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("csv_path", type=Path, metavar="FILE.csv")
        parser.add_argument("--queue", required=True, metavar="SLUG")
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="Import the valid rows and list the invalid ones, instead of importing nothing.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the file and report; store nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        notice = local_stack.no_stack_notice(
            broker_url=settings.CELERY_BROKER_URL,
            recorded_url=settings.LOCAL_STACK_BROKER_URL,
            var_dir=settings.VAR_DIR,
        )
        if notice:
            self.stderr.write(notice)
        # call_command() hands options over without argparse's type conversion.
        path = Path(options["csv_path"])
        if not path.is_file():
            raise CommandError(f"{path} is not a file")
        try:
            queue = Queue.objects.get(slug=options["queue"])
        except Queue.DoesNotExist:
            raise CommandError(f"no queue with slug '{options['queue']}'") from None
        rows = CsvItems(path, width=queue.input_width)
        dry_run = options["dry_run"]

        # A first pass checks every row and keeps none, so a file with one bad row leaves
        # the queue untouched and memory stays that of the ids however long the file; the
        # second stores chunk by chunk as it reads, without the rows --skip-invalid skips.
        checked = self._pass(rows, queue, store=False)
        problems = [rows.where(problem) for problem in checked.errors]
        if problems:
            if not options["skip_invalid"]:
                raise CommandError(
                    f"{len(problems):,} invalid row(s) in {path}; nothing was imported "
                    f"(--skip-invalid imports the valid rows):\n{_listing(problems)}"
                )
            rows.skipped = _row_numbers(checked.errors)
        if dry_run:
            if problems:  # the ids of the rows that would be imported
                self._pass(rows, queue, store=False)
            self._report_dry_run(rows, queue, problems)
            return
        result = self._pass(rows, queue, store=True)
        if result.errors:  # the file changed between the two passes
            raise CommandError(
                f"{path} changed while it was read; {result.created:,} item(s) were imported "
                "before the change was found, these rows were not:\n"
                + _listing([rows.where(problem) for problem in result.errors])
            )
        self._report(queue, result, problems)

    def _pass(self, rows: CsvItems, queue: Queue, *, store: bool) -> BulkResult:
        # disable=None hides the bar when stderr is not a terminal (pipes, cron, tests).
        with (
            rows.unreadable_as_error(),
            tqdm(
                rows,
                total=rows.estimate(),
                unit=" rows",
                desc="Importing" if store else "Checking",
                file=_BarStream(self.stderr),
                disable=None,
            ) as bar,
        ):
            return items_create_bulk(
                queue=queue, rows=bar, validate_only=not store, validated=store
            )

    def _report(self, queue: Queue, result: BulkResult, problems: list[str]) -> None:
        self.stdout.write(
            self.style.SUCCESS(f"Created {result.created:,} item(s) in queue {queue.slug}.")
        )
        duplicates = result.duplicates
        self.stdout.write(f"Skipped {len(duplicates):,} duplicate(s) already in the queue.")
        if duplicates:
            self.stdout.write(_listing(duplicates))
        if problems:
            self.stdout.write(self.style.WARNING(f"Skipped {len(problems):,} invalid row(s):"))
            self.stdout.write(_listing(problems))

    def _report_dry_run(self, rows: CsvItems, queue: Queue, problems: list[str]) -> None:
        ids = rows.external_ids
        existing = sum(
            Item.objects.filter(queue=queue, external_id__in=ids[start : start + 1000]).count()
            for start in range(0, len(ids), 1000)
        )
        self.stdout.write(
            f"Dry run, nothing stored: {len(ids) - existing:,} item(s) would be created in "
            f"queue {queue.slug}; {existing:,} duplicate(s) already in the queue would be skipped."
        )
        if problems:
            self.stdout.write(
                self.style.WARNING(f"{len(problems):,} invalid row(s) would be skipped:")
            )
            self.stdout.write(_listing(problems))
