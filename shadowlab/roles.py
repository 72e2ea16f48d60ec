"""The three roles are Django groups; code asks for permissions, never for group names."""

from django.contrib.auth.models import AnonymousUser, User

INSPECTOR = "inspector"
ML_LEAD = "ml_lead"
ADMIN = "admin"

JUDGE_ITEMS = "inspections.judge_item"
VIEW_REPORTS = "analytics.view_reports"
REGISTER_MODELS = "deployments.register_modelversion"
DEPLOY_MODELS = "deployments.change_deployment"
EVALUATE_GATE = "analytics.evaluate_gate"
EDIT_GATE_POLICY = "analytics.change_gate_policy"
REQUEST_PROMOTION = "deployments.request_promotion"
DECIDE_PROMOTION = "deployments.decide_promotion"
KILL_SWITCH = "deployments.flip_kill_switch"
VIEW_PROMOTIONS = "deployments.view_promotionrequest"
VIEW_ROLLOUT = "deployments.view_rolloutcontrol"
VIEW_AUDIT_LOG = "deployments.view_auditevent"
# A queue's settings, its deferral threshold among them: admins only.
CHANGE_QUEUE = "inspections.change_queue"
# A queue's API tokens, admins only. Revoking takes the delete permission: it replaces
# deleting, and keeps the token listed for the record.
VIEW_API_TOKENS = "inspections.view_apitoken"
ISSUE_API_TOKENS = "inspections.add_apitoken"
REVOKE_API_TOKENS = "inspections.delete_apitoken"

# What ml_leads and admins both read about the gate and the rollout.
_ROLLOUT_VIEWS = [
    "analytics.view_gatepolicy",
    "analytics.view_gateevaluation",
    "deployments.view_promotionrequest",
    "deployments.view_rolloutcontrol",
]

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
        "analytics.view_adjudication",
        EVALUATE_GATE,
        REQUEST_PROMOTION,
        *_ROLLOUT_VIEWS,
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
        "analytics.view_adjudication",
        "analytics.delete_adjudication",
        "auth.add_user",
        "auth.change_user",
        "auth.view_user",
        "auth.view_group",
        EVALUATE_GATE,
        REQUEST_PROMOTION,
        EDIT_GATE_POLICY,
        DECIDE_PROMOTION,
        KILL_SWITCH,
        *_ROLLOUT_VIEWS,
    ],
}

AnyUser = User | AnonymousUser


def is_inspector(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(JUDGE_ITEMS)


def can_view_reports(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(VIEW_REPORTS)


def can_evaluate_gate(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(EVALUATE_GATE)


def can_edit_gate_policy(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(EDIT_GATE_POLICY)


def can_request_promotion(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(REQUEST_PROMOTION)


def can_decide_promotion(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(DECIDE_PROMOTION)


def can_flip_kill_switch(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(KILL_SWITCH)


def can_roll_back(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(DEPLOY_MODELS)


def can_set_deferral_threshold(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(CHANGE_QUEUE)


def can_view_audit_log(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(VIEW_AUDIT_LOG)


def can_register_models(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(REGISTER_MODELS)


def can_issue_api_tokens(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(ISSUE_API_TOKENS)


def can_revoke_api_tokens(user: AnyUser) -> bool:
    return user.is_authenticated and user.has_perm(REVOKE_API_TOKENS)


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


def groups_sync_historical(apps: object, group_permissions: dict[str, list[str]]) -> None:
    """Give each group exactly these permissions, with a migration's historical models.

    Each data migration passes the mapping as it stood when it was written: the live
    GROUP_PERMISSIONS may name permissions that do not exist yet at that point.
    """
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():  # type: ignore[attr-defined]
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)  # type: ignore[arg-type]
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")  # type: ignore[attr-defined]
    permission_model = apps.get_model("auth", "Permission")  # type: ignore[attr-defined]
    for group_name, names in group_permissions.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        permissions = []
        for name in names:
            app_label, codename = name.split(".")
            permissions.append(
                permission_model.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(permissions)
