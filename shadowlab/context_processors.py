from django.conf import settings
from django.http import HttpRequest

from shadowlab import roles


def shadowlab(request: HttpRequest) -> dict[str, object]:
    """Expose the broker mode and the user's roles to every template."""
    user = request.user
    return {
        "local_broker": settings.CELERY_BROKER_URL.startswith("filesystem://"),
        "is_inspector": roles.is_inspector(user),
        "is_analyst": roles.can_view_reports(user),
        "is_registrar": roles.can_register_models(user),
        "can_view_audit_log": roles.can_view_audit_log(user),
        "can_view_api_tokens": user.is_authenticated and user.has_perm(roles.VIEW_API_TOKENS),
        "can_view_rollout": user.is_authenticated and user.has_perm(roles.VIEW_ROLLOUT),
        "oidc_provider_name": settings.SHADOWLAB_OIDC_PROVIDER_NAME
        if settings.SHADOWLAB_OIDC_ENABLED
        else "",
    }
