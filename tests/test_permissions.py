"""Who may open which page: one table, every role against every view."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from deployments.models import ModelVersion
from inspections.models import Judgment
from inspections.services import item_create

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Redirect:
    to: str


LOGIN = Redirect("/accounts/login/?next=")
ADMIN_LOGIN = Redirect("/admin/login/?next=")
QUEUES = Redirect("/inspect/")
OVERVIEW = Redirect("/overview/")
INSPECT = Redirect("/inspect/digits/")

ROLES = ("anonymous", "inspector", "ml_lead", "admin_user", "outsider")
# fmt: off
MATRIX = [
    # method  path                     anonymous    inspector    ml_lead   admin     outsider
    ("GET",  "/",                      LOGIN,       QUEUES,      OVERVIEW, OVERVIEW, 403),
    ("GET",  "/inspect/",              LOGIN,       200,         403,      403,      403),
    ("GET",  "/inspect/digits/",       LOGIN,       200,         403,      403,      403),
    ("POST", "/inspect/digits/judge",  LOGIN,       INSPECT,     403,      403,      403),
    ("GET",  "/inspect/digits/judge",  405,         405,         405,      405,      405),
    ("POST", "/inspect/digits/undo",   LOGIN,       INSPECT,     403,      403,      403),
    ("GET",  "/inspect/history/",      LOGIN,       200,         403,      403,      403),
    ("GET",  "/overview/",             LOGIN,       403,         200,      200,      403),
    ("GET",  "/models/upload/",        LOGIN,       403,         403,      200,      403),
    # The admin's empty form is let in and refused as invalid: 400, nothing registered.
    ("POST", "/models/upload/",        LOGIN,       403,         403,      400,      403),
    ("GET",  "/admin/",                ADMIN_LOGIN, ADMIN_LOGIN, 200,      200,      ADMIN_LOGIN),
    ("GET",  "/healthz",               200,         200,         200,      200,      200),
    ("GET",  "/api/docs",              LOGIN,       403,         200,      200,      403),
    ("GET",  "/api/openapi.json",      LOGIN,       403,         200,      200,      403),
]
# fmt: on

CASES = [
    pytest.param(role, method, path, expected, id=f"{role}-{method}-{path}")
    for method, path, *row in MATRIX
    for role, expected in zip(ROLES, row, strict=True)
]


@pytest.mark.parametrize(("role", "method", "path", "expected"), CASES)
def test_each_role_gets_the_expected_answer_from_each_view(
    request, client_for, queue, other_queue, role, method, path, expected
):
    user = None if role == "anonymous" else request.getfixturevalue(role)
    item = item_create(queue=queue, external_id="waiting", features=[0.0] * 64)
    data = {"item_id": item.pk, "label": "3"} if path.endswith("/judge") else {}
    client = client_for(user)

    response = client.get(path) if method == "GET" else client.post(path, data)

    if isinstance(expected, Redirect):
        assert response.status_code == 302
        assert response["Location"].startswith(expected.to)
    else:
        assert response.status_code == expected
    if expected in (LOGIN, ADMIN_LOGIN, 403, 405):
        # Refused means nothing changed.
        assert not Judgment.objects.exists()
        assert not ModelVersion.objects.exists()


def test_an_inspector_judging_from_the_page_records_the_judgment(client_for, inspector, queue):
    item = item_create(queue=queue, external_id="waiting", features=[0.0] * 64)
    client_for(inspector).post("/inspect/digits/judge", {"item_id": item.pk, "label": "3"})
    assert Judgment.objects.get().inspector == inspector
