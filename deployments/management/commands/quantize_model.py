"""manage.py quantize_model: make and register the INT8 variant of an FP32 model version."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from deployments.management.actors import actor_from_username
from deployments.models import ModelVersion
from deployments.onnx_checks import ModelRejected
from deployments.parity import parity_lines
from deployments.quantization import STEPS
from deployments.registry import model_version_quantize
from deployments.selectors import model_version_get_by_key


class Command(BaseCommand):
    help = "Quantize an FP32 model version to INT8 and register the result as a new version."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # --version is the new model version here, not Django's: let ours replace the built-in.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("key", metavar="NAME:VERSION", help="The FP32 model version.")
        parser.add_argument(
            "--version", help="Version of the INT8 model (default: the parent's plus '-int8')."
        )
        parser.add_argument("--user", metavar="USERNAME", help="Who quantizes the model.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Register the INT8 model even if it agrees with its parent on fewer than "
            "99.5%% of top-1 decisions.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            parent = model_version_get_by_key(options["key"])
        except ModelVersion.DoesNotExist as exc:
            raise CommandError(str(exc)) from None
        actor = actor_from_username(options["user"])
        started = time.perf_counter()

        def progress(step: str, detail: str) -> None:
            if options["verbosity"] > 0:
                number = STEPS.index(step) + 1
                elapsed = time.perf_counter() - started
                self.stdout.write(f"[{number}/{len(STEPS)}] {step}: {detail} ({elapsed:.1f} s)")

        try:
            int8 = model_version_quantize(
                model_version=parent,
                version=options["version"],
                force=options["force"],
                created_by=actor,
                progress=progress,
            )
        except ModelRejected as exc:
            raise CommandError(f"quantization refused: {' '.join(str(exc).split())}") from exc
        agreement = int8.notes.get("top1_agreement_with_parent")
        self.stdout.write(self.style.SUCCESS(f"Registered {int8.key} (int8 of {parent.key})"))
        self.stdout.write(f"  method:           {int8.notes.get('quantization')}")
        self.stdout.write(f"  calibration rows: {int8.notes.get('calibration_rows', 0):,}")
        self.stdout.write(
            "  top-1 agreement:  "
            + ("n/a (no reference data)" if agreement is None else f"{agreement:.2%}")
        )
        self.stdout.write(f"  size:             {parent.size_bytes:,} -> {int8.size_bytes:,} bytes")
        self.stdout.write("parity with the FP32 parent:")
        for line in parity_lines(int8.notes.get("parity", {})):
            self.stdout.write(f"  {line}")
