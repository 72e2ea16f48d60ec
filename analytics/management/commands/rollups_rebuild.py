"""manage.py rollups_rebuild: recompute the daily rollups of a range of closed days."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from analytics.days import utc_today
from analytics.services import rollup_compute
from deployments.models import ModelVersion

# Ten years of days: more than any deployment keeps, few enough to finish.
MAX_DAYS = 3660


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{name} must be a date like 2026-11-30, not {text!r}") from None


class Command(BaseCommand):
    help = (
        "Recompute the daily rollups of every closed day from --since (to --until, default "
        "yesterday), for every model version or the one given; run it after a restore or an "
        "upgrade. Each day's rollup is replaced, so running it twice changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, metavar="DATE")
        parser.add_argument("--until", metavar="DATE", help="Last day (default: yesterday).")
        parser.add_argument("--model", metavar="NAME:VERSION", help="Only this model version.")
        parser.add_argument("--queue", metavar="SLUG", help="Only this queue's versions.")

    def handle(self, *args: Any, **options: Any) -> None:
        yesterday = utc_today() - timedelta(days=1)
        since = _day(options["since"], "--since")
        until = _day(options["until"], "--until") if options["until"] else yesterday
        if until > yesterday:
            raise CommandError(f"--until must be a closed day, {yesterday} or earlier")
        if since > until:
            raise CommandError("--since must not be after --until")
        days = (until - since).days + 1
        if days > MAX_DAYS:
            raise CommandError(f"{days:,} days asked; at most {MAX_DAYS:,} at a time")
        versions = ModelVersion.objects.select_related("queue", "parent").order_by("pk")
        if options["queue"]:
            versions = versions.filter(queue__slug=options["queue"])
        if options["model"]:
            name, _, version = options["model"].partition(":")
            versions = versions.filter(name=name.strip(), version=version.strip())
        chosen = list(versions)
        if not chosen:
            raise CommandError("no model version matches")
        total = days * len(chosen)
        with tqdm(total=total, unit="day", disable=options["verbosity"] == 0) as bar:
            for model_version in chosen:
                for offset in range(days):
                    rollup_compute(model_version=model_version, day=since + timedelta(offset))
                    bar.update()
        self.stdout.write(
            self.style.SUCCESS(f"rebuilt {total:,} rollups ({len(chosen)} versions x {days} days)")
        )
