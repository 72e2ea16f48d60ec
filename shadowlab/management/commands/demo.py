from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shadowlab.demo import DEMO_USERS, demo_setup


class Command(BaseCommand):
    help = (
        "Set up the digits demo: queue, users, an MLP trained on scikit-learn's digits exported "
        "to ONNX (FP32) and quantized (INT8), both in shadow, and items to inspect. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--items", type=int, default=300, help="Held-out digits to load.")

    def handle(self, *args: Any, **options: Any) -> None:
        result = demo_setup(items=options["items"], log=lambda line: self.stdout.write(line))
        self.stdout.write(self.style.SUCCESS(f"demo ready: queue '{result.queue.slug}'"))
        self.stdout.write(f"logins (password {result.password_source}):")
        for username, group, _, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<11} {group:<10} {result.password}")
