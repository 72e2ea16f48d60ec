"""manage.py create_api_token: issue a bearer token for one queue's API clients."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from inspections.models import Queue
from inspections.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a queue and print its secret (shown this once only)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--queue", required=True, metavar="SLUG")
        parser.add_argument("--name", default="", help="What the token is for, e.g. the client.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            queue = Queue.objects.get(slug=options["queue"])
        except Queue.DoesNotExist:
            raise CommandError(f"no queue with slug '{options['queue']}'") from None
        token, raw = api_token_create(queue=queue, name=options["name"])
        # The secret alone goes to stdout so that scripts can capture it; the note to stderr.
        self.stdout.write(raw)
        self.stderr.write(
            f"Created token {token.prefix}… for queue {queue.slug}. "
            "Store it now: only its hash is kept, it cannot be shown again.",
            self.style.WARNING,
        )
