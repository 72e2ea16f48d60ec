from django.contrib import admin
from django.urls import include, path

from inspections import views as inspection_views
from inspections.api import api
from shadowlab import health

urlpatterns = [
    path("", inspection_views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("inspect/", include("inspections.urls")),
    path("overview/", include("analytics.urls")),
    path("models/", include("deployments.urls")),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
]

admin.site.site_header = "ShadowLab administration"
admin.site.site_title = "ShadowLab"
