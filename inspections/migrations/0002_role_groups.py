"""Create the inspector, ml_lead and admin groups with their permissions."""

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
        "auth.add_user",
        "auth.change_user",
        "auth.view_user",
        "auth.view_group",
    ],
}


def create_groups(apps, schema_editor):
    groups_sync_historical(apps, GROUP_PERMISSIONS)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUP_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("inspections", "0001_initial"),
        ("deployments", "0001_initial"),
        ("analytics", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
