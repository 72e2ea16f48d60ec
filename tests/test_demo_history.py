"""The demo's three weeks of history, built once for this module and run a second time.

The gate figures are read from the demo's raw rows (judgments, predictions, features) and
decided by the pure gate, so that they hold whatever the rollup-based gatherer does.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, timedelta
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings

from analytics.days import utc_today
from analytics.gate.inputs import GateEvidence, GatePolicyValues
from analytics.gate.rules import GateResult, gate_evaluate
from analytics.models import DailyRollup
from analytics.stats.drift import feature_drift
from deployments.models import AuditEvent, Deployment, ModelVersion, Prediction
from deployments.registry import reference_data
from deployments.scoring_cache import model_runner, model_versions_forget
from inspections.models import Item, Judgment
from shadowlab import demo_history, roles
from shadowlab.demo_models import MODEL_NAME, MODEL_VERSION, WEAK_MODEL_VERSION

pytestmark = pytest.mark.django_db

DAYS = demo_history.HISTORY_DAYS


@dataclass(frozen=True)
class DemoRuns:
    media: Path
    first_output: str
    second_output: str
    before: dict[str, object]
    after: dict[str, object]


def _snapshot() -> dict[str, object]:
    """Return every count and a digest of every row the demo writes."""

    def digest(rows: Iterable[object]) -> str:
        return hashlib.sha256(json.dumps(list(rows), default=str).encode()).hexdigest()

    return {
        "items": digest(Item.objects.order_by("id").values_list("id", "received_at", "route")),
        "judgments": digest(
            Judgment.objects.order_by("id").values_list("id", "label", "created_at")
        ),
        "predictions": digest(
            Prediction.objects.order_by("id").values_list("id", "label", "created_at")
        ),
        "rollups": digest(DailyRollup.objects.order_by("id").values_list("id", "computed_at")),
        "deployments": digest(
            Deployment.objects.order_by("id").values_list("id", "role", "started_at", "updated_at")
        ),
        "versions": digest(ModelVersion.objects.order_by("id").values_list("id", "sha256")),
        "users": digest(User.objects.order_by("id").values_list("id", "password")),
        "audit": AuditEvent.objects.count(),
    }


@pytest.fixture(scope="module")
def runs(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[DemoRuns]:
    """Run `manage.py demo` twice on an empty database; flush it again afterwards."""
    media = tmp_path_factory.mktemp("demo-media")
    overrides = override_settings(
        MEDIA_ROOT=media,
        VAR_DIR=tmp_path_factory.mktemp("demo-var"),
        SHADOWLAB_DEMO_PASSWORD="a-demo-password-for-tests",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    with overrides, django_db_blocker.unblock():
        model_versions_forget()
        first, second = io.StringIO(), io.StringIO()
        call_command("demo", items=20, stdout=first)
        before = _snapshot()
        call_command("demo", items=20, stdout=second)
        yield DemoRuns(media, first.getvalue(), second.getvalue(), before, _snapshot())
        call_command("flush", interactive=False, verbosity=0)
        roles.groups_sync()
        model_versions_forget()


@pytest.fixture(autouse=True)
def _demo_media(runs, settings, _media_root):
    # The models' files are where the demo stored them, not in each test's own folder.
    settings.MEDIA_ROOT = runs.media


def _version(version: str) -> ModelVersion:
    return ModelVersion.objects.select_related("queue").get(name=MODEL_NAME, version=version)


def _history() -> list[Item]:
    return list(Item.objects.filter(external_id__startswith=demo_history.PREFIX))


def test_the_demo_prints_each_history_step_with_its_counts(runs):
    for step in ("history 1/4", "history 2/4", "history 3/4", "history 4/4"):
        assert step in runs.first_output
    assert "double-inspected" in runs.first_output
    assert "digits-mlp:2 (should fail it)" in runs.first_output


def test_a_second_demo_run_changes_nothing_and_says_so(runs):
    assert runs.after == runs.before
    assert "0 new" in runs.second_output
    assert "0 daily rollups computed" in runs.second_output


def test_the_history_fills_three_weeks_of_closed_utc_days(runs):
    days = {item.received_at.astimezone(UTC).date() for item in _history()}
    today = utc_today()
    assert days == {today - timedelta(days=n) for n in range(1, DAYS + 1)}
    assert len(_history()) >= DAYS * 150
    for version in ModelVersion.objects.all():
        rolled = DailyRollup.objects.filter(model_version=version).values_list("day", flat=True)
        assert set(rolled) == days, version.key


def test_every_history_item_is_judged_and_hundreds_by_a_panel_of_three(runs):
    history = _history()
    assert all(item.human_status == Item.HumanStatus.COMPLETE for item in history)
    panel = [item for item in history if item.judgments_needed == 3]
    assert len(panel) >= 300
    assert all(item.judgment_count == 3 for item in panel)
    judged_at = Judgment.objects.filter(item__in=history).values_list(
        "created_at", "item__received_at"
    )
    assert all(received < made < received + timedelta(hours=3) for made, received in judged_at)


def test_simulated_inspectors_get_three_to_five_percent_of_calm_digits_wrong(runs):
    planned = {p.external_id: p for p in demo_history.history_plan(days=DAYS)}
    right = wrong = 0
    for external_id, label in Judgment.objects.filter(
        item__external_id__startswith=demo_history.PREFIX
    ).values_list("item__external_id", "label"):
        if planned[external_id].strength == 0:
            ok = int(label) == planned[external_id].truth
            right, wrong = right + ok, wrong + (not ok)
    assert 0.02 < wrong / (right + wrong) < 0.06


def test_history_predictions_are_the_models_own_outputs_soon_after_arrival(runs):
    history = _history()[::97]
    for version in ModelVersion.objects.all():
        stored = dict(
            Prediction.objects.filter(model_version=version, item__in=history).values_list(
                "item_id", "label"
            )
        )
        matrix = np.asarray([item.features for item in history], dtype=np.float32)
        outputs = model_runner(version).predict(matrix).label_indices
        assert [stored[item.pk] for item in history] == [version.labels[k] for k in outputs]
    lags = Prediction.objects.filter(item__in=history).values_list(
        "created_at", "item__received_at"
    )
    assert all(timedelta(0) < made - received < timedelta(seconds=5) for made, received in lags)
    assert Prediction.objects.filter(status=Prediction.Status.ERROR).count() == 0


def test_every_version_is_in_shadow_since_the_history_began(runs):
    first = min(item.received_at for item in _history())
    deployments = Deployment.objects.all()
    assert deployments.count() == 3
    for deployment in deployments:
        assert deployment.role == Deployment.Role.SHADOW
        assert deployment.started_at <= first


def test_the_drift_episode_moves_the_features_on_its_days_only(runs):
    reference = reference_data(_version(MODEL_VERSION))
    by_day: dict[int, list[list[float]]] = defaultdict(list)
    today = utc_today()
    for item in _history():
        by_day[(today - item.received_at.astimezone(UTC).date()).days].append(item.features)

    def drifted_share(days_ago: int) -> float:
        return float(np.mean([f.drifted for f in feature_drift(reference, by_day[days_ago])]))

    strongest = max(demo_history.DRIFT_EPISODE, key=demo_history.DRIFT_EPISODE.__getitem__)
    assert drifted_share(strongest) >= 0.25
    assert drifted_share(DAYS) < 0.15


def _gate(version: ModelVersion) -> GateResult:
    """Decide the gate on the version's history rows with the default policy."""
    labels = list(version.queue.labels)
    items = sorted(_history(), key=lambda item: (item.received_at, item.pk))
    predicted = dict(
        Prediction.objects.filter(model_version=version).values_list("item_id", "label")
    )
    judged: dict[int, list[str]] = defaultdict(list)
    for item_id, label in Judgment.objects.order_by("created_at").values_list("item_id", "label"):
        judged[item_id].append(label)
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    differences = []
    for item in items:
        model = predicted[item.pk]
        given = judged[item.pk]
        for label in given:
            confusion[labels.index(label), labels.index(model)] += 1
        if len(given) >= 2:
            pairs = [a == b for i, a in enumerate(given) for b in given[i + 1 :]]
            differences.append(np.mean([label == model for label in given]) - np.mean(pairs))
    reference = reference_data(version)
    assert reference is not None
    drift = feature_drift(reference, [item.features for item in items])
    latencies = Prediction.objects.filter(model_version=version).values_list(
        "latency_ms", flat=True
    )
    evidence = GateEvidence(
        labels=tuple(labels),
        confusion=confusion,
        paired_differences=np.asarray(differences),
        predictions=len(predicted),
        errors=Prediction.objects.filter(model_version=version, status="error").count(),
        latency_p95_ms=float(np.percentile(list(latencies), 95)),
        max_psi=max(f.psi for f in drift),
        drifted_share=float(np.mean([f.drifted for f in drift])),
        int8_parity=version.notes.get("top1_agreement_with_parent"),
        is_int8=version.variant == ModelVersion.Variant.INT8,
    )
    return gate_evaluate(policy=GatePolicyValues(), evidence=evidence)


def _criteria(result: GateResult) -> dict[str, object]:
    return {criterion.name: criterion for criterion in result.criteria}


def test_the_full_model_passes_the_default_gate_on_the_history(runs):
    result = _gate(_version(MODEL_VERSION))
    assert result.verdict == "pass", [(c.name, c.verdict, c.lower) for c in result.criteria]
    assert _gate(_version(f"{MODEL_VERSION}-int8")).verdict == "pass"


def test_the_weaker_candidate_clearly_fails_the_default_gate(runs):
    weak, good = (
        _criteria(_gate(_version(WEAK_MODEL_VERSION))),
        _criteria(_gate(_version(MODEL_VERSION))),
    )
    assert weak["agreement_floor"].verdict == "fail"
    assert weak["agreement_floor"].upper < 0.90
    assert weak["agreement_floor"].value < good["agreement_floor"].value - 0.1
    assert weak["noninferiority"].verdict == "fail"
    assert weak["per_label_recall"].verdict == "fail"
