"""Single sign-on in Chromium: the button, the provider's pages and back, under the CSP.

What a requests session cannot show: that the browser still sends ShadowLab's session
cookie (SameSite=Lax) when the provider, another site, redirects it to the callback, and
that the pages on ShadowLab's side raise no Content-Security-Policy violation.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page

from shadowlab import roles
from tests import test_oidc
from tests.browser.test_csp_browser import RECORD_VIOLATIONS
from tests.test_oidc import PROVIDER_PASSWORD, Provider, _roles_of

# The provider and single sign-on fixtures of the requests-driven tests.
provider = test_oidc.provider
sso = test_oidc.sso

pytestmark = [pytest.mark.browser, pytest.mark.security, pytest.mark.django_db(transaction=True)]


def test_an_ml_lead_signs_in_with_the_button_through_the_provider_in_chromium(
    page: Page, live_server, sso: Provider, figure
):
    sso.user("erin", "shadowlab-leads")
    violations: list[str] = []
    page.add_init_script(RECORD_VIOLATIONS)

    page.goto(f"{live_server.url}/accounts/login/?next=/audit/")
    violations += page.evaluate("window.cspViolations")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.wait_for_url(lambda url: "/accounts/login/" in url and "openid" in url)
    page.fill("input[name=username]", "erin")
    page.fill("input[name=password]", PROVIDER_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(lambda url: urlsplit(url).path == "/audit/")
    violations += page.evaluate("window.cspViolations")

    assert page.get_by_role("heading", level=1).first.is_visible()
    assert _roles_of("erin") == {roles.ML_LEAD}
    assert violations == []
    figure("CSP violations on ShadowLab's pages of the sign-in", len(violations))
