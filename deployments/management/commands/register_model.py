"""manage.py register_model: validate an ONNX classifier and register it for a queue.

The model comes from a file, or with --from-mlflow from an MLflow registry (see
deployments.mlflow_source).
"""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.management.actors import actor_from_username
from deployments.models import ModelVersion
from deployments.onnx_checks import ModelRejected
from deployments.registry import model_version_register, reference_load
from inspections.models import Queue


class Command(BaseCommand):
    help = (
        "Validate an ONNX classifier (a file, or a model in an MLflow registry) against a queue "
        "and register it as a model version."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # --version is the model's version here, not Django's: let ours replace the built-in.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("onnx_path", type=Path, metavar="FILE.onnx", nargs="?")
        parser.add_argument(
            "--from-mlflow",
            metavar="URI",
            help="models:/<name>/<version>, models:/<name>@<alias> or runs:/<run_id>/<path>, "
            "read from the server at MLFLOW_TRACKING_URI (ONNX or scikit-learn flavour).",
        )
        parser.add_argument(
            "--tag-back",
            action="store_true",
            help="With --from-mlflow: write the gate verdict and rollout state back to the MLflow "
            "model version as tags whenever they change.",
        )
        parser.add_argument("--queue", required=True, metavar="SLUG")
        parser.add_argument("--name", help="Required for a file; defaults to MLflow's name.")
        parser.add_argument("--version", help="Required for a file; defaults to MLflow's.")
        parser.add_argument(
            "--labels", help="Comma-separated label of each output column (default: the queue's)."
        )
        parser.add_argument(
            "--reference",
            type=Path,
            metavar="FILE.npy|FILE.csv",
            help="Reference feature rows (.npy or .csv) for drift; with --from-mlflow a file or "
            "an artifact path of the model's run (default: a reference.npy or reference.csv "
            "logged with the model or at the run's root).",
        )
        parser.add_argument("--user", metavar="USERNAME", help="Who registers the model.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            queue = Queue.objects.get(slug=options["queue"])
        except Queue.DoesNotExist:
            raise CommandError(f"no queue with slug '{options['queue']}'") from None
        actor = actor_from_username(options["user"])
        labels = (
            [label.strip() for label in options["labels"].split(",")] if options["labels"] else None
        )
        try:
            if options["from_mlflow"]:
                model_version = self._from_mlflow(queue, labels, actor, options)
            else:
                model_version = self._from_file(queue, labels, actor, options)
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
        source = model_version.mlflow_source
        if source:
            self.stdout.write(
                f"  mlflow:         {source['uri']} (run {source['run_id']}, "
                f"{source['flavour']} flavour) at {source['tracking_uri']}"
            )
            if source.get("tag_back"):
                self.stdout.write("  tags back:      gate verdict and rollout state")

    def _from_file(
        self, queue: Queue, labels: list[str] | None, actor: Any, options: dict[str, Any]
    ) -> ModelVersion:
        if options["onnx_path"] is None:
            raise CommandError("give an ONNX file or --from-mlflow URI")
        if options["tag_back"]:
            raise CommandError("--tag-back needs --from-mlflow")
        if not options["name"] or not options["version"]:
            raise CommandError("a model file needs --name and --version")
        # call_command() hands options over without argparse's type conversion.
        onnx_path = Path(options["onnx_path"])
        reference_path = Path(options["reference"]) if options["reference"] else None
        for path in (onnx_path, reference_path):
            if path is not None and not path.is_file():
                raise CommandError(f"{path} is not a file")
        reference = (
            reference_load(reference_path, width=queue.input_width)
            if reference_path is not None
            else None
        )
        return model_version_register(
            queue=queue,
            name=options["name"],
            version=options["version"],
            onnx_path=onnx_path,
            labels=labels,
            reference=reference,
            created_by=actor,
        )

    def _from_mlflow(
        self, queue: Queue, labels: list[str] | None, actor: Any, options: dict[str, Any]
    ) -> ModelVersion:
        if options["onnx_path"] is not None:
            raise CommandError("give either an ONNX file or --from-mlflow, not both")
        # Imported here: the MLflow client is only needed on this path.
        from deployments.mlflow_source import model_version_register_from_mlflow

        return model_version_register_from_mlflow(
            queue=queue,
            uri=options["from_mlflow"],
            name=options["name"],
            version=options["version"],
            labels=labels,
            reference=str(options["reference"]) if options["reference"] else None,
            tag_back=options["tag_back"],
            created_by=actor,
        )
