"""Worker processes killed and stopped under load (R1, R2, R3, R8): nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import time

import pytest

from deployments import sweeper
from deployments.models import Prediction, ScoringAttempt

from .chaos import (
    ItemStream,
    busy_child_kill,
    duplicate_predictions,
    every_item_scored,
    file_broker_only,
    predictions_of,
    redis_only,
    unscored_items,
)
from .conftest import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

STREAM = 1000


def test_killing_a_worker_child_mid_batch_loses_and_duplicates_no_prediction(
    worker, shadow_model, api_token, digit_rows, figure
):
    worker.start()
    stream = ItemStream(token=api_token, rows=digit_rows, count=STREAM, chunk=100, seconds=8)
    stream.start()
    killed = []
    while stream.running() and len(killed) < 3:
        # The stream may end while no child is busy: then there is nothing left to kill.
        pid = busy_child_kill(worker.processes[-1].pid, while_=stream.running)
        if pid is not None:
            killed.append(pid)
        time.sleep(1.5)
    stream.join()
    started = time.monotonic()
    wait_until(
        every_item_scored([shadow_model]),
        timeout=60,
        message=f"{unscored_items(shadow_model)} items unscored\n{worker.log()[-20000:]}",
    )
    lost_batches = worker.log().count("WorkerLostError(")
    assert lost_batches, "no kill caught a child with a batch: nothing was tested"
    figure("children killed mid-batch", lost_batches)
    figure("lost items", unscored_items(shadow_model))
    figure("duplicate predictions", duplicate_predictions())
    figure("seconds to score the rest after the stream", round(time.monotonic() - started, 1))
    assert unscored_items(shadow_model) == 0
    assert duplicate_predictions() == 0


VISIBILITY_TIMEOUT = 8  # seconds before Redis hands a dead worker's messages out again
SWEEP_GRACE = 5  # seconds an item may wait for its prediction before the sweeper re-queues it
SWEEP_EVERY = 2  # seconds between sweeps (beat's interval)


def _kill_the_whole_worker_mid_stream_then_restart(worker, version, token, rows, figure):
    """Stream items, SIGKILL the worker and its children at once, restart it, sweep as beat."""
    worker.env["SHADOWLAB_BROKER_VISIBILITY_TIMEOUT"] = str(VISIBILITY_TIMEOUT)
    worker.start()
    stream = ItemStream(token=token, rows=rows, count=STREAM, chunk=50, seconds=8).start()
    time.sleep(2)
    busy_child_kill(worker.processes[-1].pid, signal_group=True)
    worker.processes[-1].wait(timeout=10)
    killed_at = time.monotonic()
    worker.start()
    stream.join()
    last_sweep = 0.0
    swept = 0

    def recovered() -> bool:
        nonlocal last_sweep, swept
        if every_item_scored([version])():
            return True
        if time.monotonic() - last_sweep >= SWEEP_EVERY:
            swept += sweeper.unscored_sweep().requeued
            last_sweep = time.monotonic()
        return False

    bound = VISIBILITY_TIMEOUT + SWEEP_GRACE + SWEEP_EVERY
    wait_until(
        recovered,
        timeout=bound + 30,
        message=f"{unscored_items(version)} items unscored\n{worker.log()[-4000:]}",
    )
    recovery = time.monotonic() - killed_at
    figure("seconds from the kill until every item was scored", round(recovery, 1))
    figure("bound: visibility timeout + sweep grace + sweep interval", bound)
    figure("items the sweeper re-queued", swept)
    figure("lost items", unscored_items(version))
    figure("duplicate predictions", duplicate_predictions())
    assert unscored_items(version) == 0
    assert duplicate_predictions() == 0
    assert Prediction.objects.filter(model_version=version, status="ok").count() == STREAM
    # The restart itself (a new worker process importing Django and ONNX Runtime) comes on top.
    assert recovery < bound + 20


@redis_only
def test_killing_the_whole_worker_loses_nothing_once_restarted_within_visibility_and_a_sweep(
    worker, shadow_model, api_token, digit_rows, figure, settings
):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "SWEEP_GRACE_SECONDS": SWEEP_GRACE}
    _kill_the_whole_worker_mid_stream_then_restart(
        worker, shadow_model, api_token, digit_rows, figure
    )


@file_broker_only
def test_embedded_mode_killing_the_whole_worker_loses_nothing_once_the_sweeper_ran(
    worker, shadow_model, api_token, digit_rows, figure, settings
):
    # The file broker deletes a message as a worker takes it: what the killed worker held is
    # gone, and only the sweeper brings those items back.
    settings.SHADOWLAB = {**settings.SHADOWLAB, "SWEEP_GRACE_SECONDS": SWEEP_GRACE}
    _kill_the_whole_worker_mid_stream_then_restart(
        worker, shadow_model, api_token, digit_rows, figure
    )


@pytest.mark.parametrize(
    "group",
    [
        pytest.param(False, id="main-process"),
        # On the file broker the children die with their batches and the main process spins
        # in interpreter shutdown until killed; the sweeper recovers those items (see
        # docs/reliability.md). On Redis the lost batches are sent again at once.
        pytest.param(True, id="process-group", marks=redis_only),
    ],
)
def test_sigterm_under_load_finishes_or_hands_back_every_batch(
    worker, shadow_model, api_token, digit_rows, figure, group
):
    # A backlog of 100 batches, so that the worker is busy with some and holds more when told
    # to stop: docker stop signals the main process, systemd the whole process group.
    ItemStream(token=api_token, rows=digit_rows, count=STREAM, chunk=10, seconds=0).start().join()
    worker.start()
    process = worker.processes[-1]
    signalled = time.monotonic()
    if group:
        os.killpg(process.pid, signal.SIGTERM)
    else:
        process.send_signal(signal.SIGTERM)
    # Usually a few seconds; now and then billiard's pool processes wait up to 30 s for the
    # main process to read their last results before they exit (docker-compose.yml gives the
    # worker two minutes).
    exit_code = process.wait(timeout=45)
    shutdown = time.monotonic() - signalled
    scored_by_then = predictions_of(shadow_model)
    worker.start()
    wait_until(
        every_item_scored([shadow_model]),
        timeout=60,
        message=f"{unscored_items(shadow_model)} items unscored\n{worker.log()[-4000:]}",
    )
    figure("warm shutdown seconds", round(shutdown, 2))
    figure("items scored before the worker exited", scored_by_then)
    figure("lost items", unscored_items(shadow_model))
    figure("duplicate predictions", duplicate_predictions())
    assert exit_code == 0
    assert not ScoringAttempt.objects.exists(), "the sweeper was needed"
    assert unscored_items(shadow_model) == 0
    assert duplicate_predictions() == 0
