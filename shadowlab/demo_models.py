"""The demo's queue name and model versions: a full MLP that can pass the gate, a weaker one."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from django.contrib.auth.models import User

from deployments.models import Deployment, ModelVersion
from deployments.registry import model_version_quantize, model_version_register
from deployments.services import deployment_shadow_start
from inspections.models import Queue
from shadowlab import digits

QUEUE_SLUG = "digits"
MODEL_NAME = "digits-mlp"
MODEL_VERSION = "1"
# The weaker candidate: the same training rows, but it reads only a few pixels.
WEAK_MODEL_VERSION = "2"
WEAK_PIXELS = 8
CANDIDATES = {"good": MODEL_VERSION, "weak": WEAK_MODEL_VERSION}


def demo_models_ensure(
    *, queue: Queue, actor: User | None, log: Callable[[str], None]
) -> tuple[ModelVersion, ModelVersion]:
    """Train, register and quantize the demo MLP unless it exists; return FP32 and INT8."""
    fp32 = ModelVersion.objects.filter(name=MODEL_NAME, version=MODEL_VERSION).first()
    if fp32 is None:
        split = digits.digits_split()
        with tempfile.TemporaryDirectory(prefix="shadowlab-demo-") as tmp:
            path = Path(tmp) / "digits.onnx"
            accuracy = digits.digits_model_export(split, path)
            fp32 = model_version_register(
                queue=queue,
                name=MODEL_NAME,
                version=MODEL_VERSION,
                onnx_path=path,
                reference=split.train_x,
                notes={"holdout_accuracy": round(accuracy, 4), "trained_rows": len(split.train_x)},
                created_by=actor,
            )
        log(f"trained and registered {fp32.key} (held-out accuracy {accuracy:.3f})")
    int8 = fp32.variants.filter(variant=ModelVersion.Variant.INT8).first()
    if int8 is None:
        int8 = model_version_quantize(model_version=fp32, created_by=actor)
        log(
            f"quantized {int8.key} ({int8.notes.get('quantization')}, top-1 agreement "
            f"{int8.notes.get('top1_agreement_with_parent', float('nan')):.4f})"
        )
    return fp32, int8


def weak_model_ensure(
    *, queue: Queue, actor: User | None, log: Callable[[str], None]
) -> ModelVersion:
    """Train and register the weaker candidate (it reads 8 of the 64 pixels) unless it exists."""
    weak = ModelVersion.objects.filter(name=MODEL_NAME, version=WEAK_MODEL_VERSION).first()
    if weak is not None:
        return weak
    split = digits.digits_split()
    with tempfile.TemporaryDirectory(prefix="shadowlab-demo-") as tmp:
        path = Path(tmp) / "digits-weak.onnx"
        accuracy = digits.digits_weak_model_export(split, path, pixels=WEAK_PIXELS)
        weak = model_version_register(
            queue=queue,
            name=MODEL_NAME,
            version=WEAK_MODEL_VERSION,
            onnx_path=path,
            reference=split.train_x,
            notes={
                "holdout_accuracy": round(accuracy, 4),
                "trained_rows": len(split.train_x),
                "input_pixels": WEAK_PIXELS,
                "description": f"a cheaper MLP that reads only the {WEAK_PIXELS} most "
                "informative pixels; the demo's candidate that fails the gate",
            },
            created_by=actor,
        )
    log(
        f"trained and registered the weaker candidate {weak.key} (held-out accuracy {accuracy:.3f})"
    )
    return weak


def candidate_shadow_ensure(
    *, candidate: str, actor: User | None, log: Callable[[str], None]
) -> ModelVersion:
    """Put the demo's good or weak candidate in shadow, registering the weak one if needed.

    A version that is already canary or live stays where it is.
    """
    if candidate not in CANDIDATES:
        expected = ", ".join(CANDIDATES)
        raise ValueError(f"unknown candidate {candidate!r}; expected one of {expected}")
    queue = Queue.objects.get(slug=QUEUE_SLUG)
    if candidate == "weak":
        version = weak_model_ensure(queue=queue, actor=actor, log=log)
    else:
        version = ModelVersion.objects.get(name=MODEL_NAME, version=MODEL_VERSION)
    deployment = Deployment.objects.filter(queue=queue, model_version=version).first()
    if deployment is not None and deployment.role in (
        Deployment.Role.SHADOW,
        Deployment.Role.CANARY,
        Deployment.Role.LIVE,
    ):
        return version
    deployment_shadow_start(model_version=version, actor=actor)
    log(f"put {version.key} in shadow on {queue.slug}")
    return version
