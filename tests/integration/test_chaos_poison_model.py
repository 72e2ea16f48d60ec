"""A model that crashes ONNX Runtime in the worker (R7): its items get errors, others score on."""

from __future__ import annotations

import signal
import time

import pytest

from deployments.models import Prediction
from deployments.registry import model_version_register
from deployments.services import deployment_shadow_start

from .chaos import ItemStream, duplicate_predictions, every_item_scored
from .conftest import wait_until
from .poison_models import (
    POISON_PIXEL,
    crashing_model_write,
    failing_model_write,
    run_in_child,
)

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

ITEMS = 200


@pytest.fixture
def poison_models(shadow_model, queue, digits_onnx, digits_split, admin_user, tmp_path):
    crashing = crashing_model_write(digits_onnx, tmp_path / "crashing.onnx")
    if run_in_child(crashing, POISON_PIXEL) != -signal.SIGFPE:
        pytest.skip("ONNX Runtime's 64-bit integer division traps on x86-64 only, not here")
    versions = {}
    for name, path in [
        ("digits-crashing", crashing),
        ("digits-failing", failing_model_write(digits_onnx, tmp_path / "failing.onnx")),
    ]:
        # Registration runs the model on its reference rows, which it passes.
        versions[name] = model_version_register(
            queue=queue,
            name=name,
            version="1",
            onnx_path=path,
            reference=digits_split.train_x,
            created_by=admin_user,
        )
        deployment_shadow_start(model_version=versions[name], actor=admin_user)
    return versions["digits-crashing"], versions["digits-failing"]


def test_a_model_that_crashes_onnx_runtime_gets_errors_within_three_attempts_and_others_score_on(
    worker, shadow_model, poison_models, api_token, digit_rows, figure
):
    crashing, failing = poison_models
    worker.start()
    started = time.monotonic()
    ItemStream(
        token=api_token,
        rows=digit_rows,
        count=ITEMS,
        chunk=50,
        seconds=2,
        first_pixel=POISON_PIXEL,
    ).start().join()
    wait_until(
        every_item_scored([shadow_model, crashing, failing]),
        timeout=90,
        message=f"{Prediction.objects.count()} of {3 * ITEMS} predictions\n{worker.log()[-4000:]}",
    )
    elapsed = time.monotonic() - started

    healthy = Prediction.objects.filter(model_version=shadow_model)
    assert healthy.filter(status="ok").count() == ITEMS
    crashed = Prediction.objects.filter(model_version=crashing)
    assert crashed.filter(status="error").count() == ITEMS
    crash_attempts = sorted(set(crashed.values_list("attempts", flat=True)))
    assert max(crash_attempts) <= 3
    reasons = set(crashed.values_list("reason", flat=True))
    assert all(reason.startswith("worker process died") for reason in reasons), reasons
    assert any("SIGFPE" in reason for reason in reasons), reasons
    failed = Prediction.objects.filter(model_version=failing)
    assert failed.filter(status="error", attempts=1).count() == ITEMS
    assert all(
        reason.startswith("inference failed") for reason in failed.values_list("reason", flat=True)
    )
    assert duplicate_predictions() == 0
    deaths = worker.log().count("exited with 'signal 8 (SIGFPE)'")
    assert deaths, "no worker process died: the crash was not tested"

    figure("attempts before the crashing model's items got an error", max(crash_attempts))
    figure("worker processes killed by the crashing model", deaths)
    figure("items the healthy model scored meanwhile", f"{healthy.count()} of {ITEMS}")
    figure("attempts before the raising model's items got an error", 1)
    figure("seconds until every version had a prediction for every item", round(elapsed, 1))
