"""Mail to admins about pending promotion requests and models stuck in error (locmem backend)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from deployments import notifications, tasks
from deployments.models import ErrorEpisode, ModelVersion, Prediction
from deployments.promotions import promotion_request_create
from inspections.models import Item
from shadowlab import roles
from tests.deployments.rollout_factories import deployment_make, evaluation_make, version_make

pytestmark = pytest.mark.django_db


def _admin(username: str, email: str) -> User:
    user = User.objects.create_user(username, password="x", email=email, is_staff=True)
    roles.groups_sync()
    user.groups.add(Group.objects.get(name=roles.ADMIN))
    return user


@pytest.fixture
def admins(db) -> list[User]:
    return [_admin("ada", "ada@example.com"), _admin("bob", "bob@example.com")]


def _notify_calls(callbacks) -> list[int]:
    return [
        callback.args[0]
        for callback in callbacks
        if getattr(callback, "func", None) is notifications._promotion_request_notify_send
    ]


def test_a_filed_promotion_request_mails_every_admin_but_the_requester(
    queue, admins, mailoutbox, django_capture_on_commit_callbacks
):
    candidate = version_make(queue, "2")
    deployment_make(candidate, "shadow")
    requester = admins[0]

    with django_capture_on_commit_callbacks() as callbacks:
        request = promotion_request_create(
            queue=queue,
            model_version=candidate,
            target="canary",
            share=0.05,
            evaluation=evaluation_make(candidate),
            actor=requester,
            note="two weeks above the inspectors",
        )
    assert _notify_calls(callbacks) == [request.pk]
    assert mailoutbox == []  # nothing is sent inside the request

    tasks.promotion_request_notify(request.pk)

    assert [mail.to for mail in mailoutbox] == [["bob@example.com"]]
    mail = mailoutbox[0]
    assert "digits-mlp:2" in mail.subject
    assert "canary at 5%" in mail.subject
    assert f"/rollout/promotions/{request.pk}/" in mail.body
    assert "two weeks above the inspectors" in mail.body


def test_a_request_decided_before_its_mail_goes_out_mails_nobody(queue, admins, mailoutbox):
    candidate = version_make(queue, "2")
    deployment_make(candidate, "shadow")
    request = promotion_request_create(
        queue=queue,
        model_version=candidate,
        target="canary",
        share=0.05,
        evaluation=evaluation_make(candidate),
        actor=admins[0],
    )
    request.status = request.Status.REJECTED
    request.decided_by = admins[1]
    request.decided_at = timezone.now()
    request.save()

    assert notifications.promotion_request_notify(request_id=request.pk) == 0
    assert mailoutbox == []


def _predictions(version: ModelVersion, *, ok: int, errors: int, at, prefix: str) -> None:
    items = Item.objects.bulk_create(
        Item(
            queue=version.queue,
            external_id=f"{prefix}-{k}",
            features=[0.0] * version.input_width,
            received_at=at,
        )
        for k in range(ok + errors)
    )
    rows = Prediction.objects.bulk_create(
        Prediction(
            item=item,
            model_version=version,
            status=Prediction.Status.OK if k < ok else Prediction.Status.ERROR,
            label=version.labels[0] if k < ok else "",
            confidence=0.9 if k < ok else None,
            backend="fp32",
            reason="" if k < ok else "InvalidArgument: input has NaN",
        )
        for k, item in enumerate(items)
    )
    # created_at is auto_now_add: put the rows where the test wants them in time.
    Prediction.objects.filter(pk__in=[row.pk for row in rows]).update(created_at=at)


def test_a_model_stuck_in_error_mails_once_per_episode_not_per_item(
    queue, admins, mailoutbox, settings
):
    settings.SHADOWLAB = {
        **settings.SHADOWLAB,
        "ERROR_WINDOW_MINUTES": 15,
        "ERROR_ALERT_RATE": 0.5,
        "ERROR_ALERT_MIN_ITEMS": 20,
    }
    version = version_make(queue, "2")
    deployment_make(version, "shadow")
    start = timezone.now()
    _predictions(version, ok=5, errors=25, at=start - timedelta(minutes=1), prefix="a")

    opened = notifications.model_errors_watch(now=start)
    assert [episode.model_version for episode in opened] == [version]
    assert len(mailoutbox) == 2  # one per admin
    assert "digits-mlp:2 is stuck in error" in mailoutbox[0].subject
    assert "25 of the last 30 predictions" in mailoutbox[0].body
    assert "25 x InvalidArgument: input has NaN" in mailoutbox[0].body

    # More errors in the same episode: no new mail.
    _predictions(version, ok=0, errors=40, at=start + timedelta(minutes=1), prefix="b")
    assert notifications.model_errors_watch(now=start + timedelta(minutes=2)) == []
    assert len(mailoutbox) == 2

    # The version recovers: the episode closes, quietly.
    later = start + timedelta(minutes=30)
    _predictions(version, ok=30, errors=1, at=later - timedelta(minutes=1), prefix="c")
    assert notifications.model_errors_watch(now=later) == []
    episode = ErrorEpisode.objects.get()
    assert episode.ended_at == later
    assert len(mailoutbox) == 2

    # It breaks again: a new episode, a new mail.
    again = later + timedelta(minutes=30)
    _predictions(version, ok=0, errors=20, at=again - timedelta(minutes=1), prefix="d")
    assert len(notifications.model_errors_watch(now=again)) == 1
    assert ErrorEpisode.objects.count() == 2
    assert len(mailoutbox) == 4


def test_too_few_predictions_or_a_few_errors_mail_nobody(queue, admins, mailoutbox):
    quiet, healthy = version_make(queue, "2"), version_make(queue, "3")
    deployment_make(quiet, "shadow")
    deployment_make(healthy, "shadow")
    now = timezone.now()
    _predictions(quiet, ok=0, errors=5, at=now - timedelta(minutes=1), prefix="q")
    _predictions(healthy, ok=90, errors=10, at=now - timedelta(minutes=1), prefix="h")

    assert notifications.model_errors_watch(now=now) == []
    assert mailoutbox == []


def test_errors_older_than_the_window_do_not_count(queue, admins, mailoutbox):
    version = version_make(queue, "2")
    deployment_make(version, "shadow")
    now = timezone.now()
    _predictions(version, ok=0, errors=50, at=now - timedelta(hours=2), prefix="old")

    assert notifications.model_errors_watch(now=now) == []
    assert mailoutbox == []
