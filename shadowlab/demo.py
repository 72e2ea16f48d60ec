"""Set up and feed the digits demo through the same services the real paths use."""

from __future__ import annotations

import math
import random
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from deployments.models import ModelVersion
from deployments.registry import model_version_quantize, model_version_register
from deployments.services import deployment_shadow_start
from inspections.models import Item, Queue
from inspections.services import (
    JudgmentRejected,
    item_create,
    items_create_bulk,
    judgment_record,
    queue_create,
)
from shadowlab import digits, roles

QUEUE_SLUG = "digits"
MODEL_NAME = "digits-mlp"
MODEL_VERSION = "1"
DEMO_USERS = [
    ("inspector1", roles.INSPECTOR, False, False),
    ("inspector2", roles.INSPECTOR, False, False),
    ("lead", roles.ML_LEAD, True, False),
    ("admin", roles.ADMIN, True, True),
]
PASSWORD_FILE = "demo-password"  # noqa: S105 - a file name, not a password

# Digits people confuse with each other, most likely first.
SIMILAR_DIGITS = {
    0: [6, 8, 9],
    1: [7, 4, 2],
    2: [7, 3, 1],
    3: [8, 5, 9],
    4: [9, 1, 7],
    5: [6, 3, 9],
    6: [5, 0, 8],
    7: [1, 2, 9],
    8: [3, 9, 0],
    9: [4, 8, 3],
}


def demo_password() -> tuple[str, str]:
    """Return the demo password and where it came from (environment, file or new)."""
    given = settings.SHADOWLAB_DEMO_PASSWORD
    if given:
        return given, "SHADOWLAB_DEMO_PASSWORD"
    path = Path(settings.VAR_DIR) / PASSWORD_FILE
    if path.exists():
        return path.read_text().strip(), str(path)
    password = secrets.token_urlsafe(12)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password, f"generated, kept in {path}"


@dataclass(frozen=True)
class DemoResult:
    queue: Queue
    password: str
    password_source: str
    models: list[ModelVersion]
    items_loaded: int


def demo_setup(*, items: int = 300, log: Callable[[str], None] = print) -> DemoResult:
    """Create (or bring up to date) the digits queue, the demo users, models and items."""
    password, source = demo_password()
    queue = Queue.objects.filter(slug=QUEUE_SLUG).first()
    if queue is None:
        queue = queue_create(
            name="Handwritten digits",
            slug=QUEUE_SLUG,
            labels=digits.LABELS,
            input_width=digits.WIDTH,
            image_shape=digits.IMAGE_SHAPE,
            double_inspection_rate=0.1,
            # Three opinions on the sampled items: pairwise kappa and Fleiss' kappa both.
            panel_size=3,
        )
        log(f"created queue {queue.slug}")
    admin = None
    for username, group, staff, superuser in DEMO_USERS:
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            user.is_staff, user.is_superuser = staff, superuser
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=group))
        if created:
            log(f"created user {username} ({group})")
        if username == "admin":
            admin = user

    split = digits.digits_split()
    fp32 = ModelVersion.objects.filter(name=MODEL_NAME, version=MODEL_VERSION).first()
    if fp32 is None:
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
                created_by=admin,
            )
        log(f"trained and registered {fp32.key} (held-out accuracy {accuracy:.3f})")
    int8 = fp32.variants.filter(variant=ModelVersion.Variant.INT8).first()
    if int8 is None:
        int8 = model_version_quantize(model_version=fp32, created_by=admin)
        log(
            f"quantized {int8.key} ({int8.notes.get('quantization')}, top-1 agreement "
            f"{int8.notes.get('top1_agreement_with_parent', float('nan')):.4f})"
        )
    for version in (fp32, int8):
        deployment_shadow_start(model_version=version, actor=admin)

    rows = [
        (f"digits-{index:04d}", [float(v) for v in features])
        for index, features in enumerate(split.holdout_x[:items])
    ]
    result = items_create_bulk(queue=queue, rows=rows, rng=random.Random(0))
    if result.created:
        log(f"loaded {result.created} items")
    return DemoResult(queue, password, source, [fp32, int8], result.created)


def digit_drifted(image: np.ndarray, *, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Return an 8x8 digit with noise, a shift and an occlusion that grow with strength."""
    picture = image.reshape(8, 8).astype(np.float64)
    if strength > 0:
        shift = round(rng.uniform(0, 2 * strength))
        if shift:
            axis = int(rng.integers(0, 2))
            picture = np.roll(picture, shift * int(rng.choice([-1, 1])), axis=axis)
        picture = picture + rng.normal(0.0, 4.0 * strength, size=picture.shape)
        if rng.random() < strength:
            row, column = rng.integers(0, 6, size=2)
            picture[row : row + 3, column : column + 3] = 0.0
    return np.clip(np.round(picture), 0, digits.PIXEL_MAX).reshape(64)


@dataclass(frozen=True)
class SimulatedInspector:
    user: User
    accuracy: float
    seconds: float  # typical seconds per item


def inspectors_simulated(
    *, count: int, accuracy: float, rng: random.Random
) -> list[SimulatedInspector]:
    """Return simulated inspectors, each a little better or worse than the given accuracy."""
    group = Group.objects.get(name=roles.INSPECTOR)
    cast = []
    for number in range(1, count + 1):
        user, created = User.objects.get_or_create(username=f"sim-inspector-{number}")
        if created:
            user.set_unusable_password()
            user.save()
            user.groups.add(group)
        own = min(1.0, max(0.0, accuracy + rng.uniform(-0.03, 0.03)))
        cast.append(SimulatedInspector(user, own, rng.uniform(1.5, 4.0)))
    return cast


def label_simulated(truth: int, *, accuracy: float, rng: random.Random) -> int:
    """Return what an inspector of this accuracy says; mistakes favour similar digits."""
    if rng.random() < accuracy:
        return truth
    similar = SIMILAR_DIGITS[truth]
    if rng.random() < 0.8:
        return rng.choices(similar, weights=[0.6, 0.3, 0.1])[0]
    return rng.choice([d for d in range(10) if d != truth])


def simulate(
    *,
    items: int,
    drift: float,
    inspectors: int,
    accuracy: float = 0.95,
    judged_share: float = 1.0,
    seed: int | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Stream items through intake and have simulated inspectors judge them; return items made."""
    from sklearn.datasets import load_digits

    queue = Queue.objects.get(slug=QUEUE_SLUG)
    seed = seed if seed is not None else secrets.randbits(32)
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    data = load_digits()
    cast = inspectors_simulated(count=max(1, inspectors), accuracy=accuracy, rng=rng)
    run = f"sim-{seed:08x}"
    made = 0
    for index in range(items):
        strength = drift * (index / max(items - 1, 1))
        pick = int(np_rng.integers(0, len(data.target)))
        truth = int(data.target[pick])
        features = digit_drifted(data.data[pick], strength=strength, rng=np_rng)
        item = item_create(
            queue=queue, external_id=f"{run}-{index:06d}", features=features.tolist()
        )
        made += 1
        if rng.random() < judged_share:
            _judge(item, truth, cast, strength, rng)
        progress(1)
    return made


def _judge(
    item: Item, truth: int, cast: list[SimulatedInspector], strength: float, rng: random.Random
) -> None:
    judges = rng.sample(cast, k=min(item.judgments_needed, len(cast)))
    for judge in judges:
        # Noisy, shifted or occluded images are harder for people too.
        accuracy = judge.accuracy * (1.0 - 0.15 * strength)
        label = label_simulated(truth, accuracy=accuracy, rng=rng)
        seconds = judge.seconds * math.exp(rng.gauss(0.0, 0.35))
        try:
            judgment_record(
                item=item, inspector=judge.user, label=str(label), seconds_spent=seconds
            )
        except JudgmentRejected:
            return
