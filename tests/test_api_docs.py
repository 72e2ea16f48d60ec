"""The API's Swagger UI: local assets only, no inline script, the schema behind the same door."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders

from shadowlab.api_docs import SWAGGER_UI_VERSION

pytestmark = pytest.mark.django_db


def test_the_docs_page_renders_and_loads_only_vendored_assets(client_for, ml_lead):
    response = client_for(ml_lead).get("/api/docs")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert f"/static/vendor/swagger-ui-bundle-{SWAGGER_UI_VERSION}.js" in assets
    assert f"/static/vendor/swagger-ui-{SWAGGER_UI_VERSION}.css" in assets
    assert "/static/js/api-docs.js" in assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "//" not in "".join(assets)
    assert "cdn" not in html.lower()


def test_the_docs_page_has_no_inline_script_and_a_strict_policy(client_for, admin_user):
    response = client_for(admin_user).get("/api/docs")

    html = response.content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    policy = response["Content-Security-Policy"]
    script_src = re.search(r"script-src ([^;]*)", policy)
    assert script_src is not None and script_src.group(1).strip() == "'self'"
    assert "unsafe-eval" not in policy


def test_the_docs_page_points_swagger_at_the_schema_without_the_online_validator(
    client_for, ml_lead
):
    html = client_for(ml_lead).get("/api/docs").content.decode()

    found = re.search(r'<script id="swagger-settings" type="application/json">(.*?)</script>', html)
    assert found is not None
    settings = json.loads(found.group(1))
    assert settings["url"] == "/api/openapi.json"
    assert settings["validatorUrl"] is None


def test_the_schema_describes_the_intake_operations_to_an_ml_lead(client_for, ml_lead):
    response = client_for(ml_lead).get("/api/openapi.json")

    assert response.status_code == 200
    assert "/api/v1/queues/{slug}/items" in response.json()["paths"]
