"""Simulated traffic for the digits demo: drifting images and inspectors who make mistakes."""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from django.contrib.auth.models import Group, User

from inspections.models import Item, Queue
from inspections.services import JudgmentRejected, item_create, judgment_record
from shadowlab import digits, roles
from shadowlab.demo_models import QUEUE_SLUG

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


def inspector_user(number: int) -> User:
    """Return simulated inspector number n, a user in the inspector group who cannot log in."""
    user, created = User.objects.get_or_create(username=f"sim-inspector-{number}")
    if created:
        user.set_unusable_password()
        user.save()
        user.groups.add(Group.objects.get(name=roles.INSPECTOR))
    return user


def inspectors_simulated(
    *, count: int, accuracy: float, rng: random.Random
) -> list[SimulatedInspector]:
    """Return simulated inspectors, each a little better or worse than the given accuracy."""
    cast = []
    for number in range(1, count + 1):
        own = min(1.0, max(0.0, accuracy + rng.uniform(-0.03, 0.03)))
        cast.append(SimulatedInspector(inspector_user(number), own, rng.uniform(1.5, 4.0)))
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
    degrade_at: float | None = None,
    progress: Callable[[int], None] = lambda n: None,
) -> int:
    """Stream items through intake and have simulated inspectors judge them; return items made.

    From the share of the run degrade_at on, images come in inverted (dark strokes on a
    light ground): people still read them, a model trained on the usual ones does not.
    Items a model decided without an audit need no judgment and get none.
    """
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
        if degrade_at is not None and index >= degrade_at * items:
            features = digits.PIXEL_MAX - features
        item = item_create(
            queue=queue, external_id=f"{run}-{index:06d}", features=features.tolist()
        )
        made += 1
        if item.human_status != Item.HumanStatus.NOT_NEEDED and rng.random() < judged_share:
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
