"""API tokens expire and can be revoked; tokens issued before get an expiry too.

Existing tokens get created_at + the default lifetime (SHADOWLAB["API_TOKEN_DAYS"]), so no
token issued before this change lives forever without anyone having chosen it. A token
that this would expire already, or within GRACE, gets GRACE from now instead: its API
client keeps working over the upgrade and its owners have that long to issue a new one.
"""

from datetime import timedelta

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.models import F
from django.utils import timezone

GRACE = timedelta(days=14)


def existing_tokens_expire(apps, schema_editor):
    api_token = apps.get_model("inspections", "ApiToken")
    lifetime = timedelta(days=settings.SHADOWLAB["API_TOKEN_DAYS"])
    issued_before = list(
        api_token.objects.filter(expires_at__isnull=True).values_list("pk", flat=True)
    )
    api_token.objects.filter(pk__in=issued_before).update(expires_at=F("created_at") + lifetime)
    floor = timezone.now() + GRACE
    api_token.objects.filter(pk__in=issued_before, expires_at__lt=floor).update(expires_at=floor)


class Migration(migrations.Migration):
    dependencies = [
        ("inspections", "0006_audit_sample_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(
                blank=True, help_text="Refused from then on; empty: never expires.", null=True
            ),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="revoked_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="revoked_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="apitoken",
            name="last_used_at",
            field=models.DateTimeField(
                blank=True, help_text="Written at most once a minute.", null=True
            ),
        ),
        migrations.RunPython(existing_tokens_expire, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.CheckConstraint(
                condition=models.Q(("expires_at__isnull", True))
                | models.Q(("expires_at__gt", models.F("created_at"))),
                name="api_token_expires_after_creation",
            ),
        ),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.CheckConstraint(
                condition=models.Q(("revoked_by__isnull", True))
                | models.Q(("revoked_at__isnull", False)),
                name="api_token_revoked_by_only_when_revoked",
            ),
        ),
    ]
