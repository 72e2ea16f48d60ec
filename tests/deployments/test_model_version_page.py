"""A model version's page: registration, roles, events, gate evaluations, promotion requests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics.gate.evaluation import gate_evaluation_run
from analytics.models import GateEvaluation
from deployments.audit import audit_record
from deployments.history import HISTORY_LIMIT, audit_change_text
from deployments.models import ErrorEpisode, ModelVersion, PromotionRequest
from deployments.services import deployment_shadow_start

pytestmark = pytest.mark.django_db

PAGE = "/models/digits-mlp:1/"


def test_the_page_shows_registration_role_events_evaluations_and_requests(
    shadow_model, client_for, ml_lead, admin_user
):
    evaluation = gate_evaluation_run(model_version=shadow_model, actor=ml_lead)
    request = PromotionRequest.objects.create(
        queue=shadow_model.queue,
        model_version=shadow_model,
        target="canary",
        share=0.1,
        evaluation=evaluation,
        requested_by=ml_lead,
        note="looks ready",
        status="rejected",
        decided_by=admin_user,
        decided_at=timezone.now(),
        comment="wait for more panels",
    )
    audit_record(
        actor=admin_user,
        action="promotion.reject",
        subject=request,
        before={"status": "pending"},
        after={"status": "rejected"},
        evidence=f"gate-evaluation:{evaluation.pk}",
    )

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert shadow_model.sha256 in html
    assert f"({shadow_model.size_bytes} bytes)" in html
    assert "by boss" in html  # who registered it
    assert "none: an original model" in html
    # Its current role, and its history from the audit log, newest first.
    assert '<td>Digits</td><td>shadow</td><td class="num">0%</td>' in html
    events = html[html.index("<h2>History</h2>") : html.index("<h2>Gate evaluations</h2>")]
    order = [events.index(a) for a in ("promotion.reject", "deployment.shadow_start")]
    assert order == sorted(order)
    assert "model_version.register" in events
    assert "status: pending → rejected" in events
    assert "gate.evaluate" not in events  # listed with the evaluations instead
    # Evaluations link to their snapshot and their gate page.
    assert f'href="/api/v1/gate-evaluations/{evaluation.pk}"' in html
    assert f'href="/rollout/digits/gate/digits-mlp:1/?evaluation={evaluation.pk}"' in html
    # Requests with requester, decider, comment and the evaluation they relied on.
    assert "canary at 10%" in html and "rejected" in html
    assert "by lead" in html and "wait for more panels" in html and "looks ready" in html


def test_events_of_other_versions_are_not_shown(shadow_model, client_for, ml_lead, admin_user):
    other = ModelVersion.objects.create(
        queue=shadow_model.queue,
        name="other",
        version="1",
        onnx_file="models/other.onnx",
        sha256="1" * 64,
        size_bytes=1,
        labels=shadow_model.labels,
        input_width=shadow_model.input_width,
        input_name="x",
        probability_output="p",
    )
    deployment = deployment_shadow_start(model_version=other, actor=admin_user)
    audit_record(actor=admin_user, action="deployment.elsewhere", subject=deployment)
    evaluation = gate_evaluation_run(model_version=other, actor=ml_lead)
    audit_record(
        actor=admin_user,
        action="evidence.elsewhere",
        subject=other.queue,
        evidence=f"gate-evaluation:{evaluation.pk}",
    )

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert "deployment.shadow_start" in html
    assert "deployment.elsewhere" not in html and "evidence.elsewhere" not in html
    assert "/models/other:1/" not in html


def test_long_lists_are_cut_with_a_sentence_saying_how_many_there_are(
    model_version, client_for, ml_lead
):
    first = gate_evaluation_run(model_version=model_version, actor=ml_lead)
    GateEvaluation.objects.bulk_create(
        [
            GateEvaluation(
                queue=first.queue,
                model_version=model_version,
                policy=first.policy,
                verdict="insufficient",
                since=first.since,
                until=first.until,
                snapshot=first.snapshot,
            )
            for _ in range(HISTORY_LIMIT)
        ]
    )

    html = client_for(ml_lead).get(PAGE).content.decode()

    assert f"The newest {HISTORY_LIMIT} of {HISTORY_LIMIT + 1} evaluations are shown" in html
    assert html.count('href="/api/v1/gate-evaluations/') == HISTORY_LIMIT


def test_a_version_never_deployed_or_evaluated_reads_as_sentences(
    model_version, client_for, admin_user
):
    html = client_for(admin_user).get(PAGE).content.decode()
    assert "Registered only: this version has never been deployed." in html
    assert "Never evaluated." in html
    assert "No promotion has been requested for this version." in html
    assert "No error episode: this version's predictions have never been mostly errors" in html


def test_the_error_episodes_admins_were_mailed_about_are_on_the_page(
    shadow_model, client_for, admin_user
):
    now = timezone.now()
    common = {"queue": shadow_model.queue, "model_version": shadow_model, "role": "shadow"}
    ErrorEpisode.objects.create(
        **common,
        started_at=now - timedelta(days=1),
        ended_at=now - timedelta(hours=20),
        errors=30,
        total=40,
        reasons=["30 x model could not be loaded: ValueError: bad file"],
    )
    ErrorEpisode.objects.create(
        **common, started_at=now - timedelta(minutes=5), errors=25, total=25, reasons=[]
    )
    html = client_for(admin_user).get(PAGE).content.decode()
    section = html[html.index("<h2>Error episodes</h2>") : html.index("<h2>History</h2>")]
    assert section.count("<tr>") == 3  # the header and two episodes, newest first
    assert section.index("still going on") < section.index("30 of 40")
    assert "25 of 25" in section and "none recorded" in section
    assert "30 x model could not be loaded: ValueError: bad file" in section


@pytest.mark.parametrize("path", ["/models/digits-mlp:404/", "/models/nothing:1/"])
def test_an_unknown_model_version_is_a_404(db, client_for, ml_lead, path):
    assert client_for(ml_lead).get(path).status_code == 404


def test_the_upload_form_keeps_its_address(db, client_for, admin_user):
    assert client_for(admin_user).get("/models/upload/").status_code == 200


def test_an_audit_change_lists_changed_fields_only():
    assert audit_change_text(
        {"role": "shadow", "share": 0.0}, {"role": "canary", "share": 0.05}
    ) == ("role: shadow → canary; share: 0 → 0.05")
    assert audit_change_text(None, {"role": "shadow"}) == "role: shadow"
    assert audit_change_text({"a": 1}, {"a": 1}) == "no fields recorded"
