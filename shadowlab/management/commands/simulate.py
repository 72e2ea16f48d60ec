from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from deployments.models import ModelVersion
from deployments.onnx_checks import ModelRejected
from deployments.services import DeploymentRefused
from inspections.models import Queue
from shadowlab import local_stack
from shadowlab.demo_models import CANDIDATES, QUEUE_SLUG, candidate_shadow_ensure
from shadowlab.simulation import simulate

DRIFT = 0.3


class Command(BaseCommand):
    help = (
        "Stream digits items through intake, with drift (noise, shift, occlusion) growing over "
        "the run, and have simulated inspectors judge them with realistic mistakes. With "
        "--candidate, first put a demo candidate in shadow so that the run gives it evidence: "
        "'good' (digits-mlp:1, passes the gate once enough items are judged) or 'weak' "
        "(digits-mlp:2, reads 8 of the 64 pixels and fails it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--items", type=int, default=500)
        parser.add_argument(
            "--drift",
            type=float,
            default=None,
            help=f"Drift strength reached at the end, 0-1 (default {DRIFT}, or 0 with "
            "--candidate good: drift costs the model more than the inspectors).",
        )
        parser.add_argument("--inspectors", type=int, default=3)
        parser.add_argument(
            "--accuracy", type=float, default=0.95, help="Simulated inspectors' accuracy."
        )
        parser.add_argument(
            "--judged-share", type=float, default=1.0, help="Share of items judged by them."
        )
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument(
            "--candidate",
            action="append",
            choices=sorted(CANDIDATES),
            default=[],
            help="Put this demo candidate in shadow before streaming (registering the weak "
            "one if needed); give it twice for both.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        notice = local_stack.no_stack_notice(
            broker_url=settings.CELERY_BROKER_URL,
            recorded_url=settings.LOCAL_STACK_BROKER_URL,
            var_dir=settings.VAR_DIR,
        )
        if notice:
            self.stderr.write(notice)
        if not Queue.objects.filter(slug=QUEUE_SLUG).exists():
            raise CommandError("run `manage.py demo` first: the digits queue does not exist")
        if options["drift"] is None:
            options["drift"] = 0.0 if "good" in options["candidate"] else DRIFT
        for name in ("drift", "accuracy", "judged_share"):
            if not 0.0 <= options[name] <= 1.0:
                raise CommandError(f"--{name.replace('_', '-')} must be between 0 and 1")
        if options["items"] < 1 or options["inspectors"] < 1:
            raise CommandError("--items and --inspectors must be at least 1")
        admin = User.objects.filter(username="admin").first()
        for candidate in dict.fromkeys(options["candidate"]):
            try:
                version = candidate_shadow_ensure(
                    candidate=candidate, actor=admin, log=lambda line: self.stdout.write(line)
                )
            except ModelVersion.DoesNotExist:
                raise CommandError(
                    f"candidate {candidate}: run `manage.py demo` first to register it"
                ) from None
            except (ModelRejected, DeploymentRefused) as exc:
                raise CommandError(f"candidate {candidate}: {exc}") from exc
            self.stdout.write(f"candidate {candidate}: {version.key} scores this run in shadow")
        with tqdm(total=options["items"], unit="item", disable=options["verbosity"] == 0) as bar:
            made = simulate(
                items=options["items"],
                drift=options["drift"],
                inspectors=options["inspectors"],
                accuracy=options["accuracy"],
                judged_share=options["judged_share"],
                seed=options["seed"],
                progress=bar.update,
            )
        self.stdout.write(self.style.SUCCESS(f"simulated {made} items"))
