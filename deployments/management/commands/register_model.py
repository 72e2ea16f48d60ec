"""manage.py register_model: validate an ONNX classifier and register it for a queue."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.management.actors import actor_from_username
from deployments.onnx_checks import ModelRejected
from deployments.registry import model_version_register, reference_load
from inspections.models import Queue


class Command(BaseCommand):
    help = "Validate an ONNX classifier against a queue and register it as a model version."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # --version is the model's version here, not Django's: let ours replace the built-in.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("onnx_path", type=Path, metavar="FILE.onnx")
        parser.add_argument("--queue", required=True, metavar="SLUG")
        parser.add_argument("--name", required=True)
        parser.add_argument("--version", required=True)
        parser.add_argument(
            "--labels", help="Comma-separated label of each output column (default: the queue's)."
        )
        parser.add_argument(
            "--reference",
            type=Path,
            metavar="FILE.npy|FILE.csv",
            help="Reference feature rows (.npy or .csv) for drift.",
        )
        parser.add_argument("--user", metavar="USERNAME", help="Who registers the model.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            queue = Queue.objects.get(slug=options["queue"])
        except Queue.DoesNotExist:
            raise CommandError(f"no queue with slug '{options['queue']}'") from None
        actor = actor_from_username(options["user"])
        # call_command() hands options over without argparse's type conversion.
        onnx_path = Path(options["onnx_path"])
        reference_path = Path(options["reference"]) if options["reference"] else None
        for path in (onnx_path, reference_path):
            if path is not None and not path.is_file():
                raise CommandError(f"{path} is not a file")
        labels = (
            [label.strip() for label in options["labels"].split(",")] if options["labels"] else None
        )
        try:
            reference = (
                reference_load(reference_path, width=queue.input_width)
                if reference_path is not None
                else None
            )
            model_version = model_version_register(
                queue=queue,
                name=options["name"],
                version=options["version"],
                onnx_path=onnx_path,
                labels=labels,
                reference=reference,
                created_by=actor,
            )
        except ModelRejected as exc:
            raise CommandError(f"model refused: {' '.join(str(exc).split())}") from exc
        self.stdout.write(
            self.style.SUCCESS(f"Registered {model_version.key} for queue {queue.slug}")
        )
        self.stdout.write(f"  sha256:         {model_version.sha256}")
        self.stdout.write(f"  size:           {model_version.size_bytes:,} bytes")
        self.stdout.write(
            f"  input:          {model_version.input_name} [n, {model_version.input_width}]"
        )
        self.stdout.write(
            f"  output:         {model_version.probability_output} "
            f"[n, {len(model_version.labels)}] labels {','.join(model_version.labels)}"
        )
        self.stdout.write(f"  reference rows: {model_version.reference_rows:,}")
