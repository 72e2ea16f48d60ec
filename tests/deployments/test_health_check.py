"""The live health check: a version loads, answers in budget, reproduces its recorded outputs."""

from __future__ import annotations

import numpy as np
import pytest

from deployments import live
from deployments.health_check import (
    LiveSwitchRefused,
    live_health_check,
    live_switch_health_require,
)
from deployments.health_figures import PROBABILITY_TOLERANCE, outputs_compare
from deployments.models import AuditEvent, Prediction
from tests.deployments.live_factories import predictions_record

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_live_scorers():
    # A scorer keeps the budget it was built with; each test builds its own.
    live.live_scorers_clear()
    yield
    live.live_scorers_clear()


@pytest.fixture
def recorded(model_version, digit_rows):
    return predictions_record(model_version, digit_rows[:60], prefix="shadow")


def test_the_digits_model_passes_its_health_check(model_version, recorded):
    report = live_health_check(model_version=model_version)

    assert report.passed, report.reasons
    assert report.reasons == ()
    assert report.reference_rows == 200 and report.answered == 200
    assert report.p95_ms is not None and 0 < report.p95_ms <= report.budget_ms
    assert (report.reproduction.compared, report.reproduction.reproduced) == (60, 60)
    assert report.reproduction.max_probability_difference < PROBABILITY_TOLERANCE
    assert model_version.pk in live._scorers, "the checked version stays loaded"


def test_a_recorded_label_the_model_does_not_give_again_fails_the_check(model_version, recorded):
    prediction = Prediction.objects.filter(model_version=model_version).order_by("id").first()
    wrong = next(label for label in model_version.labels if label != prediction.label)
    Prediction.objects.filter(pk=prediction.pk).update(label=wrong)

    report = live_health_check(model_version=model_version)

    assert not report.passed
    assert report.reproduction.reproduced == 59
    (reason,) = report.reasons
    assert "1 of 60 recorded predictions were not reproduced" in reason
    assert f"item {prediction.item_id}: recorded {wrong}, live {prediction.label}" in reason


def test_recorded_probabilities_that_differ_fail_the_check(model_version, recorded):
    prediction = Prediction.objects.filter(model_version=model_version).order_by("id").first()
    probabilities = list(prediction.probabilities)
    probabilities[0] = probabilities[0] + 0.01
    Prediction.objects.filter(pk=prediction.pk).update(probabilities=probabilities)

    report = live_health_check(model_version=model_version)

    assert not report.passed
    assert "largest probability difference 0.01" in report.reasons[0]


def test_a_version_over_the_live_budget_fails_the_check(settings, model_version, recorded):
    settings.SHADOWLAB = {**settings.SHADOWLAB, "LIVE_BUDGET_MS": 0.001}

    report = live_health_check(model_version=model_version)

    assert not report.passed
    assert report.budget_ms == 0.001
    assert any("above the live budget of 0.001 ms" in reason for reason in report.reasons)
    assert any("reference rows got no answer" in reason for reason in report.reasons)


def test_a_version_with_nothing_recorded_or_no_reference_rows_fails_with_each_reason(
    model_version,
):
    model_version.reference_file = ""
    model_version.save(update_fields=["reference_file"])

    report = live_health_check(model_version=model_version)

    assert not report.passed
    assert report.reasons == (
        "it has no reference rows to score, so its speed cannot be checked",
        "it has no recorded prediction to reproduce: it has not scored items in shadow",
    )


def test_a_version_that_cannot_load_fails_the_check(queue):
    from tests.deployments.rollout_factories import version_make

    report = live_health_check(model_version=version_make(queue, "7"))
    assert not report.passed
    assert report.reasons[0].startswith("it could not be loaded in this process")


def test_a_failed_check_refuses_the_switch_and_is_audited(model_version, admin_user):
    with pytest.raises(LiveSwitchRefused, match="failed its health check, so it does not go live"):
        live_switch_health_require(
            model_version=model_version, actor=admin_user, evidence="gate-evaluation:1"
        )
    event = AuditEvent.objects.get(action="deployment.health_check")
    assert (event.actor, event.evidence) == (admin_user, "gate-evaluation:1")
    assert event.after["passed"] is False
    assert "no recorded prediction" in event.after["reasons"][0]


def test_outputs_reproduce_within_the_tolerance_and_a_tie_may_fall_either_way():
    recorded = np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    live_probabilities = recorded + np.array([[5e-5, -5e-5], [0.0, 0.0], [-0.3, 0.3]])
    result = outputs_compare(
        item_ids=[1, 2, 3],
        recorded_labels=["b", "a", "a"],
        recorded_probabilities=recorded,
        live_labels=["b", "b", "b"],
        live_probabilities=live_probabilities,
    )
    assert (result.compared, result.reproduced) == (3, 2)
    assert result.mismatches == ("item 3: recorded a, live b (largest probability difference 0.3)",)
