from django.conf import settings
from django.http import HttpRequest

from shadowlab import roles

# ml_leads and admins read a queue's rollout state; the Rollout entry is theirs.
ROLLOUT_VIEW = "deployments.view_rolloutcontrol"


def shadowlab(request: HttpRequest) -> dict[str, object]:
    """Expose the broker mode and the user's roles to every template."""
    user = request.user
    return {
        "local_broker": settings.CELERY_BROKER_URL.startswith("filesystem://"),
        "is_inspector": roles.is_inspector(user),
        "is_analyst": roles.can_view_reports(user),
        "is_registrar": roles.can_register_models(user),
        "is_rollout_viewer": user.is_authenticated and user.has_perm(ROLLOUT_VIEW),
    }
