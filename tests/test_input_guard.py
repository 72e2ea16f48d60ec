"""NUL characters in a URL or a form are refused with 400 before any view or query sees them."""

from __future__ import annotations

import pytest
from django.db import connection

from analytics.models import Adjudication
from inspections.models import Judgment
from inspections.services import item_create

pytestmark = [pytest.mark.django_db, pytest.mark.security]


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/overview/digits/disagreements/?inspector=a%00b", "query parameter 'inspector'"),
        ("/overview/digits/agreement/?model=digits-mlp%00:1", "query parameter 'model'"),
        ("/audit/?actor=%00", "query parameter 'actor'"),
        ("/overview/?since%00=2026-01-01", "query parameter 'since\\\\x00'"),
        ("/overview/digits%00/agreement/", "the URL path"),
    ],
)
def test_a_nul_in_the_url_is_a_400_naming_where(client_for, ml_lead, queue, path, named):
    response = client_for(ml_lead).get(path)

    assert response.status_code == 400
    assert named in response.content.decode()


def test_the_api_answers_a_nul_in_its_own_error_format(client_for, ml_lead, queue):
    response = client_for(ml_lead).get(
        "/api/v1/queues/digits/reports/agreement?model=digits-mlp:1&sample=%00"
    )

    assert response.status_code == 400
    assert "query parameter 'sample' holds a NUL" in response.json()["detail"]


def test_a_nul_in_a_posted_form_is_refused_and_nothing_is_recorded(client_for, inspector, queue):
    response = client_for(inspector).post(
        "/inspect/digits/judge",
        "item_id=1&label=%00",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 400
    assert "form field 'label'" in response.content.decode()
    assert not Judgment.objects.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL refuses a NUL")
def test_a_nul_the_database_refuses_from_a_multipart_form_is_a_400(
    client_for, ml_lead, queue, shadow_model
):
    # Multipart bodies are left to the view (uploads), so the driver's refusal is answered.
    item = item_create(queue=queue, external_id="x", features=[0.0] * 64)
    response = client_for(ml_lead).post(
        f"/overview/digits/adjudicate/{item.pk}/?model=digits-mlp:1",
        {"label": "1", "note": "a\0b"},
    )
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    assert not Adjudication.objects.exists()


def test_text_without_a_nul_goes_through(client_for, ml_lead, queue):
    response = client_for(ml_lead).get("/audit/?actor=lead")
    assert response.status_code == 200


def test_a_lone_surrogate_in_api_json_is_a_400_not_a_database_error(client_for, admin_user, queue):
    response = client_for(admin_user).post(
        "/api/v1/queues/digits/rollback",
        '{"model": "a\\ud800:1", "reason": "test"}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "model" in response.json()["detail"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL refuses a NUL")
def test_a_nul_in_api_json_the_database_refuses_is_a_400(client_for, admin_user, queue):
    response = client_for(admin_user).post(
        "/api/v1/queues/digits/rollback",
        '{"model": "a\\u0000:1", "reason": "test"}',
        content_type="application/json",
    )

    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
