"""manage.py create_api_token: issue a bearer token for one queue's API clients."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from deployments.management.actors import actor_from_username
from inspections.api_tokens import API_TOKEN_MAX_DAYS, api_token_days_default
from inspections.models import Queue
from inspections.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a queue and print its secret (shown this once only)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--queue", required=True, metavar="SLUG")
        parser.add_argument("--name", default="", help="What the token is for, e.g. the client.")
        lifetime = parser.add_mutually_exclusive_group()
        lifetime.add_argument(
            "--days",
            type=int,
            metavar="N",
            help=f"Days until it expires, 1 to {API_TOKEN_MAX_DAYS} (default: the "
            "SHADOWLAB_API_TOKEN_DAYS setting, 90 unless set).",
        )
        lifetime.add_argument(
            "--no-expiry",
            action="store_true",
            help="The token never expires; it works until it is revoked.",
        )
        parser.add_argument(
            "--user", metavar="USERNAME", help="Who issues it, for the audit log (an admin)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            queue = Queue.objects.get(slug=options["queue"])
        except Queue.DoesNotExist:
            raise CommandError(f"no queue with slug '{options['queue']}'") from None
        actor = actor_from_username(options["user"])
        try:
            token, raw = api_token_create(
                queue=queue,
                name=options["name"],
                created_by=actor,
                days=options["days"],
                never_expires=options["no_expiry"],
            )
        except (ValueError, PermissionDenied) as exc:
            raise CommandError(str(exc)) from None
        expiry = (
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC"
            f"{'' if options['days'] else f' (the default {api_token_days_default()} days)'}"
            if token.expires_at
            else "never expires (revoke it on the API tokens page when it is no longer needed)"
        )
        # The secret alone goes to stdout so that scripts can capture it; the note to stderr.
        self.stdout.write(raw)
        self.stderr.write(
            f"Created token {token.prefix}… for queue {queue.slug}; it {expiry}. "
            "Store it now: only its hash is kept, it cannot be shown again.",
            self.style.WARNING,
        )
