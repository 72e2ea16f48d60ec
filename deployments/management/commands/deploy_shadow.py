"""manage.py deploy_shadow: put a model version in shadow on its queue, or retire it."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from deployments.management.actors import actor_from_username
from deployments.models import ModelVersion
from deployments.selectors import model_version_get_by_key
from deployments.services import DeploymentRefused, deployment_retire, deployment_shadow_start


class Command(BaseCommand):
    help = "Put a model version in shadow on its queue (it scores items, decides none)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("key", metavar="NAME:VERSION")
        parser.add_argument(
            "--retire", action="store_true", help="Stop the shadow or standby model instead."
        )
        parser.add_argument("--user", metavar="USERNAME", help="Who makes the change.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            model_version = model_version_get_by_key(options["key"])
        except ModelVersion.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        actor = actor_from_username(options["user"])
        try:
            if options["retire"]:
                deployment = model_version.deployments.filter(queue=model_version.queue).first()
                if deployment is None:
                    raise CommandError(
                        f"{model_version.key} is not deployed on {model_version.queue.slug}"
                    )
                deployment = deployment_retire(deployment=deployment, actor=actor)
            else:
                deployment = deployment_shadow_start(model_version=model_version, actor=actor)
        except DeploymentRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{model_version.key} is {deployment.role} on {model_version.queue.slug}"
            )
        )
