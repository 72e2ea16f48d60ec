"""The rollout page's monitor panel: the latest look at each canary and live version."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from deployments.models import Deployment
from deployments.monitor import rollout_monitor_run
from deployments.monitor_panel import check_row, monitor_panel
from tests.deployments.monitor_factories import window_write
from tests.deployments.rollout_factories import deployment_make, version_make

pytestmark = pytest.mark.django_db

PAGE = "/rollout/digits/"


def _cells(html: str, check: str) -> str:
    row = html[html.index(f'<tr data-check="{check}">') :]
    return row[: row.index("</tr>")]


def test_the_page_shows_each_figure_with_its_bound_threshold_sample_and_verdict(
    queue, client_for, ml_lead, inspector
):
    live, canary = version_make(queue, "1"), version_make(queue, "2")
    deployment_make(live, "live")
    deployment_make(canary, "canary", 0.25)
    window_write(live, decisions=400, audited=150, agreed=145, inspectors=[inspector], role="live")
    window_write(canary, decisions=60, audited=20, agreed=20, inspectors=[inspector])
    rollout_monitor_run()

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert "Automatic rollback monitor" in html
    assert html.index('data-model="digits-mlp:1"') < html.index('data-model="digits-mlp:2"')
    live_part = html[
        html.index('data-model="digits-mlp:1"') : html.index('data-model="digits-mlp:2"')
    ]
    agreement = _cells(live_part, "audit_agreement")
    assert '<td class="num">96.7%</td>' in agreement
    assert '<td class="num">at most ' in agreement
    assert '<td class="num">floor 90%</td>' in agreement
    assert '<td class="num">150 (100 needed)</td>' in agreement
    assert "ok" in agreement
    assert '<td class="num">limit 100 ms</td>' in _cells(live_part, "latency_p95")
    canary_part = html[html.index('data-model="digits-mlp:2"') :]
    waiting = _cells(canary_part, "audit_agreement")
    assert "too few to decide" in waiting
    assert "Not decided yet: 20 judged audit items in the window, 100 needed." in waiting
    drift = _cells(live_part, "drift")
    assert "Not checked: this version has no reference profile" in drift
    assert re.search(r"\bnan\b", html, re.IGNORECASE) is None


def test_a_version_not_looked_at_yet_says_so(queue, client_for, admin_user):
    deployment_make(version_make(queue, "1"), "live")
    html = client_for(admin_user).get(PAGE).content.decode()
    assert "Not looked at yet in this role: the monitor looks every 60 s." in html


def test_a_look_from_before_the_version_took_its_role_is_not_shown(queue, inspector):
    version = version_make(queue, "1")
    deployment = deployment_make(version, "live")
    window_write(version, decisions=10, role="live")
    rollout_monitor_run()
    Deployment.objects.filter(pk=deployment.pk).update(
        started_at=timezone.now() + timedelta(seconds=1)
    )

    (look,) = monitor_panel(queue=queue).looks

    assert look.check is None
    assert look.rows == ()


def test_the_last_automatic_rollback_is_shown_with_its_evidence(
    queue, client_for, admin_user, inspector
):
    live, canary = version_make(queue, "1"), version_make(queue, "2")
    deployment_make(live, "live")
    deployment_make(canary, "canary", 0.5)
    window_write(canary, decisions=400, audited=150, agreed=60, inspectors=[inspector])
    (_, check) = sorted(rollout_monitor_run(), key=lambda c: c.model_version.version)

    html = client_for(admin_user).get(PAGE).content.decode()

    assert "<strong>Last automatic rollback:</strong> digits-mlp:2 (canary) at" in html
    assert check.outcome in html
    assert f"(evidence monitor-check:{check.pk})" in html
    assert 'data-model="digits-mlp:2"' not in html  # in shadow now: not watched


def test_a_queue_with_nothing_deciding_has_nothing_to_watch(queue, client_for, admin_user):
    html = client_for(admin_user).get(PAGE).content.decode()
    assert "No canary or live version: there is nothing for the monitor to watch." in html


def test_missing_figures_read_as_dashes_and_sentences_never_nan():
    row = check_row(
        {
            "name": "error_rate",
            "verdict": "too_few",
            "value": None,
            "bound": None,
            "bound_side": "lower",
            "threshold": 0.05,
            "n": 12,
            "minimum": 200,
            "sentence": "Not decided yet: 12 decisions in the window, 200 needed.",
        }
    )
    assert (row.figure, row.bound, row.threshold, row.sample) == (
        "—",
        "—",
        "limit 5%",
        "12 (200 needed)",
    )
    assert (row.verdict_text, row.light) == ("too few to decide", "insufficient")
    drift = check_row(
        {"name": "drift", "verdict": "ok", "value": 0.03125, "bound": None, "threshold": None}
    )
    assert (drift.figure, drift.bound, drift.threshold) == ("3.1%", "each feature tested", "off")
