from django.db import models


class ReportAccess(models.Model):
    """Holds the permission to read analytics; it has no table."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_reports", "Can view analytics reports and dashboards")]

    def __str__(self) -> str:
        return "analytics access"
