from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor

from shadowlab.demo import DEMO_USERS, demo_setup
from shadowlab.demo_history import HISTORY_DAYS


class Command(BaseCommand):
    help = (
        "Set up the digits demo: queue, users, an MLP trained on scikit-learn's digits exported "
        "to ONNX (FP32) and quantized (INT8), a weaker candidate version, all in shadow, three "
        "weeks of judged and scored history with a drift episode, and items to inspect. "
        "Idempotent: a second run changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--items", type=int, default=300, help="Held-out digits to load.")
        parser.add_argument(
            "--history-days",
            type=int,
            default=HISTORY_DAYS,
            help=f"Past UTC days of history to build (default {HISTORY_DAYS}; 0 builds none, "
            "and no weaker candidate either).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["items"] < 0:
            raise CommandError("--items must be 0 or more")
        if not 0 <= options["history_days"] <= 90:
            raise CommandError("--history-days must be between 0 and 90")
        _require_migrated()
        quiet = options["verbosity"] == 0
        result = demo_setup(
            items=options["items"],
            history_days=options["history_days"],
            log=(lambda line: None) if quiet else (lambda line: self.stdout.write(line)),
        )
        self.stdout.write(self.style.SUCCESS(f"demo ready: queue '{result.queue.slug}'"))
        if result.weak is not None:
            good, _ = result.models
            self.stdout.write(
                f"candidates in shadow: {good.key} (should pass the gate), "
                f"{result.weak.key} (should fail it)"
            )
        self.stdout.write(f"logins (password {result.password_source}):")
        for username, group, _, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<11} {group:<10} {result.password}")


def _require_migrated() -> None:
    """Refuse, with the command to run, a database whose tables are not all there yet."""
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        raise CommandError(
            f"the database is missing {len(pending)} migration(s): "
            "run `python manage.py migrate` first (`make run` does both)"
        )
