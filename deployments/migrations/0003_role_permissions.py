"""Give the roles their permissions on the promotion gate, promotions and the kill switch."""

from django.db import migrations

from shadowlab.roles import groups_sync_historical

# The groups' permissions as they stood when this migration was written.
GROUP_PERMISSIONS = {
    "inspector": [
        "inspections.judge_item",
    ],
    "ml_lead": [
        "analytics.view_reports",
        "inspections.view_queue",
        "inspections.view_item",
        "inspections.view_judgment",
        "deployments.view_modelversion",
        "deployments.view_deployment",
        "deployments.view_prediction",
        "deployments.view_auditevent",
        "analytics.view_adjudication",
        "analytics.evaluate_gate",
        "deployments.request_promotion",
        "analytics.view_gatepolicy",
        "analytics.view_gateevaluation",
        "deployments.view_promotionrequest",
        "deployments.view_rolloutcontrol",
    ],
    "admin": [
        "analytics.view_reports",
        "deployments.register_modelversion",
        "deployments.change_deployment",
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
        "analytics.evaluate_gate",
        "deployments.request_promotion",
        "analytics.change_gate_policy",
        "deployments.decide_promotion",
        "deployments.flip_kill_switch",
        "analytics.view_gatepolicy",
        "analytics.view_gateevaluation",
        "deployments.view_promotionrequest",
        "deployments.view_rolloutcontrol",
    ],
}


def sync_groups(apps, schema_editor):
    groups_sync_historical(apps, GROUP_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0002_gate"),
        ("analytics", "0005_gate"),
        ("inspections", "0002_role_groups"),
    ]

    operations = [migrations.RunPython(sync_groups, migrations.RunPython.noop)]
