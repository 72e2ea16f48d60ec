"""Claims of the test identity provider: the user's name and e-mail, and their groups."""

from typing import Any

from django.utils.translation import gettext_lazy as _
from oidc_provider.lib.claims import ScopeClaims


def userinfo(claims: dict[str, Any], user: Any) -> dict[str, Any]:
    claims["preferred_username"] = user.username
    claims["email"] = user.email
    return claims


class GroupsClaims(ScopeClaims):  # type: ignore[misc]
    info_groups = (_("Groups"), _("The groups you belong to."))

    def scope_groups(self) -> dict[str, Any]:
        return {"groups": sorted(self.user.groups.values_list("name", flat=True))}
