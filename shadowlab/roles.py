"""The three roles are Django groups; code asks for permissions, never for group names."""

from django.contrib.auth.models import AnonymousUser, User

INSPECTOR = "inspector"
ML_LEAD = "ml_lead"
ADMIN = "admin"

JUDGE_ITEMS = "inspections.judge_item"
VIEW_REPORTS = "analytics.view_reports"
REGISTER_MODELS = "deployments.register_modelversion"
DEPLOY_MODELS = "deployments.change_deployment"

# Permissions each group holds, as "app_label.codename". A data migration creates them.
GROUP_PERMISSIONS: dict[str, list[str]] = {
    INSPECTOR: [JUDGE_ITEMS],
    ML_LEAD: [
        VIEW_REPORTS,
        "inspections.view_queue",
        "inspections.view_item",
        "inspections.view_judgment",
        "deployments.view_modelversion",
        "deployments.view_deployment",
        "deployments.view_prediction",
        "deployments.view_auditevent",
    ],
    ADMIN: [
        VIEW_REPORTS,
        REGISTER_MODELS,
        DEPLOY_MODELS,
        "inspections.add_queue",
        "inspections.change_queue",
        "inspections.view_queue",
        "inspections.view_item",
        "inspections.change_item",
        "inspections.view_judgment",
        "inspections.add_apitoken",
        "inspections.view_apitoken",
        "inspections.delete_apitoken",
        "deployments.view_modelversion",
        "deployments.change_modelversion",
        "deployments.add_deployment",
        "deployments.view_deployment",
        "deployments.view_prediction",
        "deployments.view_auditevent",
        "auth.add_user",
        "auth.change_user",
        "auth.view_user",
        "auth.view_group",
    ],
}

AnyUser = User | AnonymousUser


def is_inspector(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(JUDGE_ITEMS)


def can_view_reports(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(VIEW_REPORTS)


def can_register_models(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(REGISTER_MODELS)


def groups_sync() -> None:
    """Create the role groups with exactly their permissions (the data migration does the same)."""
    from django.contrib.auth.models import Group, Permission

    for group_name, names in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        permissions = []
        for name in names:
            app_label, codename = name.split(".")
            permissions.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)
