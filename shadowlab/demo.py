"""Set up and feed the digits demo through the same services the real paths use."""

from __future__ import annotations

import dataclasses
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.db import transaction

from deployments.models import ModelVersion
from deployments.services import deployment_shadow_start
from inspections.models import Queue
from inspections.services import items_create_bulk, queue_create
from shadowlab import demo_history, digits, roles
from shadowlab.demo_history import HistoryResult
from shadowlab.demo_models import (
    MODEL_NAME,
    MODEL_VERSION,
    QUEUE_SLUG,
    WEAK_MODEL_VERSION,
    demo_models_ensure,
    weak_model_ensure,
)

# The demo's names, for callers that only know this module.
__all__ = ["MODEL_NAME", "MODEL_VERSION", "QUEUE_SLUG", "WEAK_MODEL_VERSION", "demo_setup"]

DEMO_USERS = [
    ("inspector1", roles.INSPECTOR, False, False),
    ("inspector2", roles.INSPECTOR, False, False),
    ("lead", roles.ML_LEAD, True, False),
    ("admin", roles.ADMIN, True, True),
]
PASSWORD_FILE = "demo-password"  # noqa: S105 - a file name, not a password


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
    models: list[ModelVersion]  # the FP32 demo model and its INT8 variant
    items_loaded: int
    weak: ModelVersion | None = None  # the weaker candidate, made with the history
    history: HistoryResult | None = None


def _queue_ensure(log: Callable[[str], None]) -> Queue:
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
    return queue


def _users_ensure(password: str, log: Callable[[str], None]) -> User:
    """Create the demo logins, or bring them back to the demo password; return the admin."""
    # Hashing costs most of a second by design; the logins share one password, so one
    # hash (and on a second run one check) serves them all.
    shared = ""
    # The role groups come with the migrations; bring them back if someone deleted them.
    roles.groups_sync()
    for username, group, staff, superuser in DEMO_USERS:
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            # A new login has no password to check (and checking one costs a dummy hash).
            matches = bool(user.password) and (
                user.password == shared or user.check_password(password)
            )
            if matches:
                shared = user.password
            # Only what differs is written, so that a second run changes nothing.
            # The admin gets an address so that automatic rollbacks show their mail.
            email = f"{username}@localhost" if group == roles.ADMIN else user.email
            if not matches or (user.is_staff, user.is_superuser, user.email) != (
                staff,
                superuser,
                email,
            ):
                shared = shared or make_password(password)
                user.password, user.is_staff, user.is_superuser = shared, staff, superuser
                user.email = email
                user.save()
            user.groups.add(Group.objects.get(name=group))
        if created:
            log(f"created user {username} ({group})")
    return User.objects.get(username="admin")


def _timed(log: Callable[[str], None]) -> Callable[[str], None]:
    """Return log with the seconds since this call after each line."""
    started = time.perf_counter()
    return lambda line: log(f"{line} ({time.perf_counter() - started:.1f} s)")


def demo_setup(
    *, items: int = 300, history_days: int = 0, log: Callable[[str], None] = print
) -> DemoResult:
    """Create (or bring up to date) the digits queue, the demo users, models and items.

    With history_days, also the weaker candidate and that many days of backdated history
    (judged, double-inspected, scored by every version, rolled up). Nothing is made twice.
    """
    log = _timed(log)
    password, source = demo_password()
    queue = _queue_ensure(log)
    admin = _users_ensure(password, log)
    fp32, int8 = demo_models_ensure(queue=queue, actor=admin, log=log)
    versions = [fp32, int8]
    weak = history = None
    if history_days:
        weak = weak_model_ensure(queue=queue, actor=admin, log=log)
        versions.append(weak)
        # Before the versions go into shadow on a new database, so that intake does not also
        # queue the history for the worker: it is scored here.
        history = demo_history.history_build(
            queue=queue, versions=versions, days=history_days, log=log
        )
    for version in versions:
        deployment_shadow_start(model_version=version, actor=admin)
    rows = [
        (f"digits-{index:04d}", [float(v) for v in features])
        for index, features in enumerate(digits.digits_split().holdout_x[:items])
    ]
    result = items_create_bulk(queue=queue, rows=rows, rng=random.Random(0))
    if result.created:
        log(f"loaded {result.created} items to inspect")
    if history is not None:
        since = datetime.combine(history.first_day, datetime.min.time(), tzinfo=UTC)
        demo_history.deployments_backdate(versions=versions, since=since)
        computed = demo_history.history_rollups(
            versions=versions, first_day=history.first_day, last_day=history.last_day
        )
        history = dataclasses.replace(history, rollups_computed=computed)
        log(f"history 4/4: {computed} daily rollups computed")
    return DemoResult(queue, password, source, [fp32, int8], result.created, weak, history)
