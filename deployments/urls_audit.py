from django.urls import path

from deployments import views_audit

app_name = "audit"

urlpatterns = [
    path("", views_audit.audit_page, name="log"),
    path("export.csv", views_audit.audit_export, name="export"),
]
