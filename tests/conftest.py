"""Shared fixtures: the cast of users, a digits queue, a registered demo model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from deployments.enqueue import broker_pause
from deployments.live import live_scorers_clear
from deployments.models import ModelVersion
from deployments.registry import model_version_register
from deployments.routing_table import routing_tables_clear
from deployments.runtime import runners_clear
from deployments.scoring_cache import model_versions_forget
from deployments.services import deployment_shadow_start
from inspections.models import Queue
from inspections.services import api_token_create, queue_create
from shadowlab import digits, roles
from tests.s3_server import CREDENTIALS, S3Server, bucket_storage_use, s3_server_running

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path_factory):
    settings.MEDIA_ROOT = tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _send_batches_at_once(settings):
    # Send each commit's ids straight away so tests see the messages they caused; the
    # coalescing buffer has tests of its own.
    settings.SHADOWLAB = {**settings.SHADOWLAB, "SCORING_MAX_WAIT_MS": 0}


@pytest.fixture(autouse=True)
def _broker_not_paused():
    # A test that makes a send fail pauses sending in this process; the next test starts afresh.
    yield
    broker_pause.clear()


@pytest.fixture(autouse=True)
def _fresh_model_version_cache():
    # Rolled-back tests hand out the same primary keys again, for other model files.
    model_versions_forget()


@pytest.fixture(autouse=True)
def _fresh_routing():
    # Each process keeps its routing tables and live scorers by queue and version ids, which
    # rolled-back tests hand out again for other queues and model files.
    yield
    routing_tables_clear()
    live_scorers_clear()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # Every test makes users with passwords; the default hasher would dominate the run.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username: str, group: str | None, *, staff: bool = False) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=staff)
    if group:
        # A transactional test flushes the groups the data migration made; bring them back.
        roles.groups_sync()
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def inspector(db) -> User:
    return _user("inspector1", roles.INSPECTOR)


@pytest.fixture
def inspector2(db) -> User:
    return _user("inspector2", roles.INSPECTOR)


@pytest.fixture
def ml_lead(db) -> User:
    return _user("lead", roles.ML_LEAD, staff=True)


@pytest.fixture
def admin_user(db) -> User:
    return _user("boss", roles.ADMIN, staff=True)


@pytest.fixture
def outsider(db) -> User:
    return _user("outsider", None)


@pytest.fixture
def client_for() -> Callable[[User | None], Client]:
    def make(user: User | None) -> Client:
        client = Client()
        if user is not None:
            client.force_login(user)
        return client

    return make


@pytest.fixture
def queue(db) -> Queue:
    return queue_create(
        name="Digits",
        slug="digits",
        labels=digits.LABELS,
        input_width=digits.WIDTH,
        image_shape=digits.IMAGE_SHAPE,
        double_inspection_rate=0.0,
    )


@pytest.fixture
def other_queue(db) -> Queue:
    return queue_create(name="Parts", slug="parts", labels=["ok", "scratch", "dent"], input_width=3)


@pytest.fixture(scope="session")
def digits_split() -> digits.DigitsSplit:
    return digits.digits_split()


@pytest.fixture(scope="session")
def digits_onnx(tmp_path_factory, digits_split) -> Path:
    """A small digits MLP exported to FP32 ONNX once per test session."""
    path = tmp_path_factory.mktemp("onnx") / "digits.onnx"
    digits.digits_model_export(digits_split, path, hidden=(32,))
    return path


@pytest.fixture
def model_version(queue, digits_onnx, digits_split, admin_user) -> ModelVersion:
    return model_version_register(
        queue=queue,
        name="digits-mlp",
        version="1",
        onnx_path=digits_onnx,
        reference=digits_split.train_x,
        created_by=admin_user,
    )


@pytest.fixture
def s3_bucket(tmp_path, settings, monkeypatch) -> Iterator[S3Server]:
    """An S3 server of this test's own whose bucket is Django's default storage.

    List it before the fixtures that register models, so that their files go to the bucket.
    """
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with s3_server_running(tmp_path, bucket=S3Server.BUCKET) as server:
        bucket_storage_use(settings, server)
        settings.MODEL_CACHE_DIR = tmp_path / "cache"
        runners_clear()
        model_versions_forget()
        yield server
        runners_clear()
        model_versions_forget()


@pytest.fixture
def shadow_model(model_version, admin_user) -> ModelVersion:
    deployment_shadow_start(model_version=model_version, actor=admin_user)
    return model_version


@pytest.fixture
def api_token(queue) -> str:
    return api_token_create(queue=queue, name="tests")[1]


@pytest.fixture
def digit_rows(digits_split) -> np.ndarray:
    return digits_split.holdout_x


# Figures the chaos, security and fuzz checks measure, printed together after the run so
# docs/reliability.md can be checked against a fresh run.
_FIGURES: list[tuple[str, str]] = []


@pytest.fixture
def figure(request) -> Callable[[str, object], None]:
    """Record one measured figure of this test: figure("lost items", 0)."""

    def record(name: str, value: object) -> None:
        _FIGURES.append((f"{request.node.nodeid} :: {name}", str(value)))

    return record


def pytest_terminal_summary(terminalreporter) -> None:
    if not _FIGURES:
        return
    terminalreporter.section("measured figures")
    for name, value in _FIGURES:
        terminalreporter.write_line(f"{name} = {value}")
