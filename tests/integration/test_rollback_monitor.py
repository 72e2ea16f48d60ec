"""The rollback monitor run by a real Celery beat and a real worker process (not eager mode).

The test process writes what intake and inspectors would: model-routed items, a Decision
per item, audit items and their judgments, for a healthy live version and a worse canary
side by side. Beat runs the monitor every few seconds on the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from django.utils import timezone

from analytics.gate.policy import gate_policy_update
from deployments.models import AuditEvent, Deployment, MonitorCheck
from tests.deployments.monitor_factories import window_write
from tests.deployments.rollout_factories import deployment_make, version_make

from .conftest import ROOT, WorkerProcess, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

INTERVAL = 2  # seconds between looks
MIN_AUDITED = 40
MIN_DECISIONS = 100
BATCH = 10  # decisions per version per batch, 4 of them judged audit items
BATCH_SECONDS = 0.25


@dataclass
class BeatProcess:
    """A `celery beat` process on the test database, with the monitor every INTERVAL seconds."""

    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started: list[float] = field(default_factory=list)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "shadowlab", "beat", "--loglevel", "INFO"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(
            lambda: "beat: Starting" in self.log() or self.process.poll() is not None,  # type: ignore[union-attr]
            timeout=60,
            message=f"beat did not start; see {self.log_path}",
        )
        assert self.process.poll() is None, self.log()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def beat(worker: WorkerProcess, tmp_path: Path) -> Iterator[BeatProcess]:
    """Beat beside the worker; both send and read mail through a folder of this test's."""
    mail = tmp_path / "mail"
    mail.mkdir()
    worker.env["SHADOWLAB_MONITOR_SECONDS"] = str(INTERVAL)
    # django-environ reads the file backend's folder from the path after a fourth slash.
    worker.env["EMAIL_URL"] = f"filemail:///{mail}"
    process = BeatProcess(env=dict(worker.env), log_path=tmp_path / "beat.log")
    yield process
    process.stop()


def _role(version) -> str:
    return Deployment.objects.get(model_version=version).role


def _mail_text(worker: WorkerProcess) -> str:
    folder = Path(worker.env["EMAIL_URL"].removeprefix("filemail:///"))
    return "".join(path.read_text(errors="replace") for path in sorted(folder.iterdir()))


def test_a_worse_canary_is_rolled_back_within_two_looks_of_its_minimum_sample_and_a_healthy_live_version_is_not(  # noqa: E501
    queue, admin_user, inspector, worker, beat
):
    admin_user.email = "boss@example.com"
    admin_user.save()
    gate_policy_update(
        queue=queue,
        values={"rollback_min_audited": MIN_AUDITED, "rollback_min_decisions": MIN_DECISIONS},
        actor=admin_user,
    )
    healthy, worse = version_make(queue, "1"), version_make(queue, "2")
    deployment_make(healthy, "live")
    deployment_make(worse, "canary", 0.5)
    worker.start()
    beat.start()

    audited = batches = 0
    reached_at: datetime | None = None
    rolled_back_at: float | None = None
    deadline = time.monotonic() + 90
    # Intake and inspectors at a steady pace: the healthy version agrees with them on 39 of
    # 40 audit items, the worse one on 1 in 4.
    while time.monotonic() < deadline:
        batches += 1
        window_write(healthy, decisions=BATCH, audited=4, agreed=3 if batches % 10 == 0 else 4,
                     inspectors=[inspector], role="live")  # fmt: skip
        if _role(worse) == "canary":
            window_write(worse, decisions=BATCH, audited=4, agreed=1, inspectors=[inspector])
            audited += 4
            if reached_at is None and audited >= MIN_AUDITED:
                reached_at = timezone.now()
        elif rolled_back_at is None:
            rolled_back_at = time.monotonic()
        if rolled_back_at is not None and time.monotonic() - rolled_back_at > 3 * INTERVAL:
            break
        time.sleep(BATCH_SECONDS)

    log = f"\nworker:\n{worker.log()[-3000:]}\nbeat:\n{beat.log()[-2000:]}"
    assert rolled_back_at is not None, f"the worse canary was never rolled back{log}"
    assert reached_at is not None
    assert (_role(healthy), _role(worse)) == ("live", "shadow")

    rollback = MonitorCheck.objects.get(model_version=worse, rolled_back=True)
    agreement = next(c for c in rollback.checks if c["name"] == "audit_agreement")
    assert agreement["verdict"] == "breach"
    assert agreement["n"] >= MIN_AUDITED
    # Within two monitor intervals of the minimum sample: at most one look at the worse
    # version after the sample was there went by without rolling it back.
    missed = MonitorCheck.objects.filter(
        model_version=worse, created_at__gte=reached_at, created_at__lt=rollback.created_at
    ).count()
    assert missed <= 1, f"{missed} looks after the minimum sample did not roll back{log}"
    move = AuditEvent.objects.get(action="deployment.rollback")
    assert (move.actor_name, move.evidence) == ("system", f"monitor-check:{rollback.pk}")
    assert AuditEvent.objects.filter(action="monitor.rollback").count() == 1

    looks = list(MonitorCheck.objects.filter(model_version=healthy))
    assert looks, f"the healthy version was never looked at{log}"
    assert not any(look.rolled_back or look.verdict == "breach" for look in looks)
    assert sum(look.verdict == "ok" for look in looks) >= 2, [look.verdict for look in looks]

    wait_until(lambda: "rolled back automatically" in _mail_text(worker), timeout=10,
               message="no mail to the admins")  # fmt: skip
    mail = _mail_text(worker)
    assert "To: boss@example.com" in mail
    assert "Subject: [ShadowLab] digits-mlp:2 rolled back automatically on Digits" in mail
