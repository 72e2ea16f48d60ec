"""The demo set-up and the simulator, through the real services."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from deployments.models import Deployment, ModelVersion
from inspections.models import Item, Judgment
from shadowlab import demo, simulation

pytestmark = pytest.mark.django_db


def test_demo_is_idempotent_and_puts_fp32_and_int8_in_shadow(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.SHADOWLAB_DEMO_PASSWORD = "a-demo-password-for-tests"
    first = demo.demo_setup(items=25, log=lambda line: None)
    second = demo.demo_setup(items=25, log=lambda line: None)
    assert (first.items_loaded, second.items_loaded) == (25, 0)
    assert Item.objects.count() == 25
    assert ModelVersion.objects.count() == 2
    fp32, int8 = first.models
    assert int8.parent_id == fp32.pk and int8.variant == "int8"
    assert int8.notes["parity"]["passes"] is True
    assert set(Deployment.objects.values_list("role", flat=True)) == {"shadow"}
    from django.contrib.auth import authenticate
    from django.test import RequestFactory

    # Sign-in throttling counts per request: authenticate() needs the request it serves.
    signing_in = RequestFactory().post("/accounts/login/")
    for username in ("inspector1", "inspector2", "lead", "admin"):
        assert authenticate(signing_in, username=username, password="a-demo-password-for-tests")


def test_demo_generates_a_password_once_and_keeps_it(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.SHADOWLAB_DEMO_PASSWORD = ""
    password, source = demo.demo_password()
    assert len(password) >= 12 and str(tmp_path) in source
    assert demo.demo_password()[0] == password


def test_simulated_inspectors_judge_every_item_with_mistakes_on_similar_digits():
    rng = random.Random(3)
    labels = [simulation.label_simulated(8, accuracy=0.7, rng=rng) for _ in range(3000)]
    wrong = [label for label in labels if label != 8]
    assert 0.25 < len(wrong) / len(labels) < 0.35
    similar = sum(1 for label in wrong if label in simulation.SIMILAR_DIGITS[8])
    assert similar / len(wrong) > 0.75


def test_drift_grows_noise_shift_and_occlusion():
    rng = np.random.default_rng(0)
    image = np.full(64, 8.0)
    calm = [simulation.digit_drifted(image, strength=0.0, rng=rng) for _ in range(50)]
    stormy = [simulation.digit_drifted(image, strength=1.0, rng=rng) for _ in range(50)]
    assert all(np.array_equal(x, image) for x in calm)
    assert np.mean([np.abs(x - image).mean() for x in stormy]) > 1.0
    assert all(x.min() >= 0 and x.max() <= 16 for x in stormy)


def test_simulate_command_streams_items_and_judgments(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.SHADOWLAB_DEMO_PASSWORD = "a-demo-password-for-tests"
    demo.demo_setup(items=0, log=lambda line: None)
    call_command("simulate", items=40, drift=0.5, inspectors=3, seed=7, verbosity=0)
    assert Item.objects.filter(external_id__startswith="sim-").count() == 40
    judged = Judgment.objects.filter(inspector__username__startswith="sim-inspector-")
    assert judged.count() >= 40
    assert Item.objects.filter(human_status="pending").count() == 0


def test_simulate_puts_both_candidates_in_shadow_and_streams_calm_digits_for_the_good_one(
    settings, tmp_path
):
    from sklearn.datasets import load_digits

    from deployments.services import deployment_retire
    from shadowlab.demo_models import MODEL_NAME, WEAK_MODEL_VERSION

    settings.VAR_DIR = tmp_path
    settings.SHADOWLAB_DEMO_PASSWORD = "a-demo-password-for-tests"
    fp32, _ = demo.demo_setup(items=0, log=lambda line: None).models
    deployment_retire(deployment=Deployment.objects.get(model_version=fp32), actor=None)
    out = io.StringIO()
    call_command(
        "simulate", "--candidate", "good", "--candidate", "weak", "--items", "30", "--seed", "5",
        verbosity=0, stdout=out,
    )  # fmt: skip

    weak = ModelVersion.objects.get(name=MODEL_NAME, version=WEAK_MODEL_VERSION)
    roles = dict(Deployment.objects.values_list("model_version_id", "role"))
    assert roles[fp32.pk] == roles[weak.pk] == "shadow"
    assert weak.notes["input_pixels"] == 8 and weak.notes["holdout_accuracy"] < 0.9
    assert "candidate weak: digits-mlp:2 scores this run in shadow" in out.getvalue()
    # Without drift every streamed image is one of the bundled digits as it is.
    originals = {tuple(row) for row in load_digits().data.tolist()}
    streamed = Item.objects.filter(external_id__startswith="sim-").values_list(
        "features", flat=True
    )
    assert len(streamed) == 30 and all(tuple(f) in originals for f in streamed)


def test_simulate_help_names_the_candidates():
    from shadowlab.management.commands.simulate import Command

    text = Command().create_parser("manage.py", "simulate").format_help()
    assert "--candidate {good,weak}" in text
    assert "fails it" in " ".join(text.split())


def test_simulate_refuses_an_unknown_candidate():
    with pytest.raises(CommandError):
        call_command("simulate", "--candidate", "best")


def test_demo_on_an_unmigrated_database_says_to_migrate_first(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}
    }
    env["SHADOWLAB_VAR_DIR"] = str(tmp_path)
    manage = Path(__file__).resolve().parent.parent / "manage.py"
    result = subprocess.run(
        [sys.executable, str(manage), "demo", "--items", "1", "--history-days", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "run `python manage.py migrate` first" in result.stderr
    assert "Traceback" not in result.stderr
