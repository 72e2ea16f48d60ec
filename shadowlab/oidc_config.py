"""Read the single sign-on settings; imported by shadowlab.settings, so no Django models here."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

# The role groups of shadowlab.roles (which imports the user model, too early for settings).
ROLE_GROUPS = ("inspector", "ml_lead", "admin")


def group_map_parse(text: str) -> dict[str, str]:
    """Parse "provider-group=role,..." into {provider group: role}, refusing unknown roles."""
    mapping: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        claim_value, sep, role = (side.strip() for side in entry.partition("="))
        if not sep or not claim_value or role not in ROLE_GROUPS:
            raise ImproperlyConfigured(
                f"SHADOWLAB_OIDC_GROUP_MAP entry {entry!r}: write provider-group=role, "
                f"the role one of {', '.join(ROLE_GROUPS)}"
            )
        mapping[claim_value] = role
    return mapping


def settings_check(
    *,
    client_id: str,
    client_secret: str,
    group_map: dict[str, str],
    discovery: str,
    endpoints: list[str],
) -> None:
    """Refuse to start with single sign-on on but not configured enough to work."""
    missing = [
        name
        for name, given in [
            ("OIDC_RP_CLIENT_ID", client_id),
            ("OIDC_RP_CLIENT_SECRET", client_secret),
            ("SHADOWLAB_OIDC_GROUP_MAP", group_map),
            ("OIDC_OP_DISCOVERY or every OIDC_OP_*_ENDPOINT", discovery or all(endpoints)),
        ]
        if not given
    ]
    if missing:
        raise ImproperlyConfigured(f"SHADOWLAB_OIDC_ENABLED=true needs {', '.join(missing)}.")
