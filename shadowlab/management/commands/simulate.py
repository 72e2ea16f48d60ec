from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from deployments.models import Deployment, ModelVersion
from deployments.onnx_checks import ModelRejected
from deployments.services import DeploymentRefused
from inspections.models import Queue
from shadowlab import local_stack
from shadowlab.demo_models import CANDIDATES, QUEUE_SLUG, candidate_shadow_ensure
from shadowlab.rollout_demo import PromotionNotPossible, rollout_demo_promote
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
        parser.add_argument(
            "--promote",
            choices=["canary", "live"],
            default=None,
            help="Before streaming, promote the candidate (digits-mlp:1 when none is given) "
            "as the demo users would: the lead evaluates the gate and requests the next canary "
            "step, the admin approves; 'live' walks every step to live.",
        )
        parser.add_argument(
            "--degrade-at",
            type=float,
            default=None,
            help="From this share of the run on (0-1), send inverted images: inspectors still "
            "read them, the model does not, and the rollback monitor takes it off.",
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
        for name in ("drift", "accuracy", "judged_share", "degrade_at"):
            if options[name] is None:
                continue
            if not 0.0 <= options[name] <= 1.0:
                raise CommandError(f"--{name.replace('_', '-')} must be between 0 and 1")
        if options["items"] < 1 or options["inspectors"] < 1:
            raise CommandError("--items and --inspectors must be at least 1")
        admin = User.objects.filter(username="admin").first()
        promoted: ModelVersion | None = None
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
            promoted = promoted or version
        if options["promote"]:
            self._promote(promoted, options["promote"], admin)
        with tqdm(total=options["items"], unit="item", disable=options["verbosity"] == 0) as bar:
            made = simulate(
                items=options["items"],
                drift=options["drift"],
                inspectors=options["inspectors"],
                accuracy=options["accuracy"],
                judged_share=options["judged_share"],
                seed=options["seed"],
                degrade_at=options["degrade_at"],
                progress=bar.update,
            )
        self.stdout.write(self.style.SUCCESS(f"simulated {made} items"))

    def _promote(self, version: ModelVersion | None, target: str, admin: User | None) -> None:
        lead = User.objects.filter(username="lead").first()
        if lead is None or admin is None:
            raise CommandError("run `manage.py demo` first: the demo's lead and admin are missing")
        if version is None:
            version = candidate_shadow_ensure(
                candidate="good", actor=admin, log=lambda line: self.stdout.write(line)
            )
        while True:
            try:
                deployment = rollout_demo_promote(
                    model_version=version,
                    lead=lead,
                    admin=admin,
                    log=lambda line: self.stdout.write(line),
                )
            except PromotionNotPossible as exc:
                raise CommandError(str(exc)) from exc
            except (ValueError, PermissionDenied) as exc:
                raise CommandError(f"promoting {version.key}: {exc}") from exc
            if target == "canary" or deployment.role == Deployment.Role.LIVE:
                return
