"""Optional sign-in through an OpenID Connect provider (mozilla-django-oidc), off by default.

The provider says who someone is and, in a claim, which of its groups they belong to;
SHADOWLAB_OIDC_GROUP_MAP turns those groups into ShadowLab's roles on every sign-in, so a
group taken away at the provider is taken away here the next time they sign in. Accounts
made this way have no usable password; an account with a password (the embedded default's,
the demo users') is never taken over by a provider's user of the same name.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, User
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.views.decorators.http import require_POST
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import import_from_settings
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from shadowlab import oidc_config, roles
from shadowlab.role_audit import roles_changed_by

log = logging.getLogger(__name__)

ROLE_GROUPS = oidc_config.ROLE_GROUPS
# Roles that reach Django's admin, as the demo users have it.
STAFF_ROLES = {roles.ML_LEAD, roles.ADMIN}
SIGN_IN_EVIDENCE = "OIDC sign-in"
# Set on the request by the backend when it refuses someone, read by the callback's page.
_REFUSAL = "_shadowlab_oidc_refusal"
# Settings the provider's discovery document supplies when they are not given.
_DISCOVERED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


def discovery_url(issuer_or_document: str) -> str:
    """Return the discovery document's URL for an issuer URL or the document's own URL."""
    suffix = "/.well-known/openid-configuration"
    url = issuer_or_document.rstrip("/")
    return url if url.endswith(suffix) else url + suffix


@functools.cache
def _discovery_document(url: str) -> dict[str, Any]:
    # Cached for the process's life (failures are not: they raise); a provider that moves
    # its endpoints is followed after a restart.
    response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
    response.raise_for_status()
    document: dict[str, Any] = response.json()
    return document


def oidc_setting(attr: str, *default: Any) -> Any:
    """Read a mozilla-django-oidc setting, an endpoint not given from the discovery document."""
    if attr in _DISCOVERED and not getattr(settings, attr, ""):
        if not settings.OIDC_OP_DISCOVERY:
            raise ImproperlyConfigured(f"Set {attr} or OIDC_OP_DISCOVERY.")
        return _discovery_document(discovery_url(settings.OIDC_OP_DISCOVERY))[_DISCOVERED[attr]]
    return import_from_settings(attr, *default)


# Signing in


@dataclass(frozen=True)
class SignIn:
    """A provider's user let in with these roles, or refused for this reason."""

    user: User | None
    roles: list[str]
    refusal: str = ""


def _claimed_roles(claims: dict[str, Any]) -> list[str]:
    values = claims.get(settings.SHADOWLAB_OIDC_GROUPS_CLAIM) or []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return []
    mapping: dict[str, str] = settings.SHADOWLAB_OIDC_GROUP_MAP
    return sorted(
        {mapping[value] for value in values if isinstance(value, str) and value in mapping}
    )


def _roles_set(*, user: User, wanted: list[str]) -> None:
    """Give the user exactly these role groups (others of theirs stay) and staff status."""
    current = set(user.groups.filter(name__in=ROLE_GROUPS).values_list("name", flat=True))
    with roles_changed_by(actor=user, evidence=SIGN_IN_EVIDENCE):
        removed = current - set(wanted)
        if removed:
            user.groups.remove(*Group.objects.filter(name__in=removed))
        added = set(wanted) - current
        if added:
            user.groups.add(*Group.objects.filter(name__in=added))
    staff = bool(STAFF_ROLES & set(wanted))
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])


def oidc_user_sign_in(*, claims: dict[str, Any]) -> SignIn:
    """Find or create the provider's user from their claims and set their roles from them."""
    named = claims.get(settings.SHADOWLAB_OIDC_USERNAME_CLAIM) or claims.get("sub")
    username = str(named or "").strip()
    if not username or len(username) > 150:
        return SignIn(None, [], "The identity provider sent no usable user name.")
    email = str(claims.get("email") or "")[:254]
    wanted = _claimed_roles(claims)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username=username).first()
        if user is not None and (user.has_usable_password() or user.is_superuser):
            return SignIn(
                None,
                [],
                f"A ShadowLab account named {username!r} signs in with its password, not "
                "through the identity provider. Ask an administrator.",
            )
        if user is not None and not user.is_active:
            return SignIn(None, [], "Your ShadowLab account is disabled. Ask an administrator.")
        if not wanted:
            if user is not None:
                _roles_set(user=user, wanted=[])  # their roles were taken away at the provider
            return SignIn(
                None,
                [],
                "Your account at the identity provider is in none of the groups that give a "
                "role in ShadowLab. Ask an administrator to add you to one.",
            )
        if user is None:
            # Two first sign-ins at once (two tabs) make one account, not an error.
            user, _ = User.objects.get_or_create(
                username=username, defaults={"email": email, "password": make_password(None)}
            )
        elif email and user.email != email:
            user.email = email
            user.save(update_fields=["email"])
        _roles_set(user=user, wanted=wanted)
    return SignIn(user, wanted)


# The properties keep the library's upper-case attribute names.
class ShadowLabOIDCBackend(OIDCAuthenticationBackend):  # type: ignore[misc]
    """mozilla-django-oidc's backend, with ShadowLab's users and roles.

    Django builds every backend for every sign-in, passwords included: the endpoints are
    looked up only when a provider's code is exchanged, so an unreachable provider never
    stands in the way of a password.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.OIDC_RP_CLIENT_ID = oidc_setting("OIDC_RP_CLIENT_ID")
        self.OIDC_RP_CLIENT_SECRET = oidc_setting("OIDC_RP_CLIENT_SECRET")
        self.OIDC_RP_SIGN_ALGO = oidc_setting("OIDC_RP_SIGN_ALGO", "RS256")
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.UserModel = User

    get_settings = staticmethod(oidc_setting)

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_TOKEN_ENDPOINT"))

    @property
    def OIDC_OP_USER_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_USER_ENDPOINT"))

    @property
    def OIDC_OP_JWKS_ENDPOINT(self) -> str:
        return str(oidc_setting("OIDC_OP_JWKS_ENDPOINT"))

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> User | None:
        # Only the callback passes a nonce; a password form posted to a URL that carries
        # ?code=&state= must not make this backend call the provider.
        if request is None or "nonce" not in kwargs or "password" in kwargs:
            return None
        if request.path != reverse("oidc_authentication_callback"):
            return None
        user: User | None = super().authenticate(request, **kwargs)
        return user

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        # Some providers put the groups in the ID token only, others in userinfo only.
        return {**payload, **super().get_userinfo(access_token, id_token, payload)}

    def get_or_create_user(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> User | None:
        outcome = oidc_user_sign_in(claims=self.get_userinfo(access_token, id_token, payload))
        if outcome.user is None:
            log.info("OIDC sign-in refused: %s", outcome.refusal)
            setattr(self.request, _REFUSAL, outcome.refusal)
        return outcome.user


def _refused(request: HttpRequest, reason: str, *, status: int) -> HttpResponse:
    context = {"reason": reason, "provider_name": settings.SHADOWLAB_OIDC_PROVIDER_NAME}
    return render(request, "registration/oidc_refused.html", context, status=status)


def _unreachable(request: HttpRequest, exc: requests.RequestException) -> HttpResponse:
    log.warning("OIDC sign-in failed: the identity provider did not answer (%s)", exc)
    return _refused(
        request, "The identity provider could not be reached. Try again later.", status=502
    )


class _AuthenticationRequestView(OIDCAuthenticationRequestView):  # type: ignore[misc]
    get_settings = staticmethod(oidc_setting)


class _CallbackView(OIDCAuthenticationCallbackView):  # type: ignore[misc]
    get_settings = staticmethod(oidc_setting)

    def login_failure(self) -> HttpResponse:
        reason = getattr(self.request, _REFUSAL, "") or "The identity provider did not sign you in."
        return _refused(self.request, reason, status=403)


def _enabled() -> None:
    if not settings.SHADOWLAB_OIDC_ENABLED:
        raise Http404("Single sign-on is not enabled.")


def oidc_authenticate(request: HttpRequest) -> HttpResponse:
    """Send the browser to the identity provider to sign in."""
    _enabled()
    try:
        response: HttpResponse = _AuthenticationRequestView.as_view()(request)
    except requests.RequestException as exc:
        return _unreachable(request, exc)
    return response


def oidc_callback(request: HttpRequest) -> HttpResponse:
    """Take the provider's answer: sign the user in with their roles, or say why not."""
    _enabled()
    try:
        response: HttpResponse = _CallbackView.as_view()(request)
    except requests.RequestException as exc:
        return _unreachable(request, exc)
    return response


# Signing out


def provider_logout_url(request: HttpRequest, id_token: str) -> str | None:
    """Return the provider's end-session URL that signs this person out there too, if any.

    OpenID Connect RP-Initiated Logout: the provider ends its own session for the ID token
    and sends the browser back to ShadowLab's sign-in page (register that page's address at
    the provider as a post-logout redirect URI). A provider without an end-session endpoint,
    or one that does not answer discovery, leaves the sign-out local.
    """
    endpoint = str(settings.OIDC_OP_LOGOUT_ENDPOINT)
    if not endpoint and settings.OIDC_OP_DISCOVERY:
        try:
            document = _discovery_document(discovery_url(settings.OIDC_OP_DISCOVERY))
        except (requests.RequestException, ValueError) as exc:
            log.warning("signed out here only: the identity provider did not answer (%s)", exc)
            return None
        endpoint = str(document.get("end_session_endpoint") or "")
    if not endpoint:
        return None
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": request.build_absolute_uri(
                resolve_url(settings.LOGOUT_REDIRECT_URL)
            ),
            "client_id": settings.OIDC_RP_CLIENT_ID,
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    """Sign out here and, for someone who came through the provider, at the provider too."""
    id_token = ""
    if settings.SHADOWLAB_OIDC_ENABLED and settings.SHADOWLAB_OIDC_PROVIDER_LOGOUT:
        id_token = str(request.session.get("oidc_id_token") or "")
    logout(request)  # forgets the session, the ID token with it
    target = provider_logout_url(request, id_token) if id_token else None
    return redirect(target or resolve_url(settings.LOGOUT_REDIRECT_URL))


def axes_exempt(request: HttpRequest, credentials: dict[str, Any] | None = None) -> bool:
    """Whether django-axes leaves this attempt alone: the provider's callback.

    The callback carries no secret to guess (a single-use code bound to this session's
    state); the provider throttles its own password form. Counting its refusals by address
    would lock a whole office out after a few colleagues without a role tried.
    """
    return bool(settings.SHADOWLAB_OIDC_ENABLED) and request.path == reverse(
        "oidc_authentication_callback"
    )
