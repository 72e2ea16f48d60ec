from django.contrib import admin
from django.urls import include, path

from analytics.api import router as reports_router
from analytics.api_gate import router as gate_router
from deployments.api import router as rollout_router
from deployments.api_deferral import router as deferral_router
from inspections import views as inspection_views
from inspections.api import router as items_router
from shadowlab import health, oidc
from shadowlab.api import api

# Mounted here rather than in shadowlab.api, which the apps' API modules import for its
# error format: that keeps the imports one-way.
api.add_router("", items_router)
api.add_router("/v1/queues/", reports_router)
api.add_router("/v1/", gate_router)
api.add_router("/v1/", rollout_router)
api.add_router("/v1/", deferral_router)

urlpatterns = [
    path("", inspection_views.home, name="home"),
    # Before Django's: signing out also ends the identity provider's session (single sign-on).
    path("accounts/logout/", oidc.sign_out, name="logout"),
    path("accounts/", include("django.contrib.auth.urls")),
    # Single sign-on: both answer 404 unless SHADOWLAB_OIDC_ENABLED.
    path("oidc/authenticate/", oidc.oidc_authenticate, name="oidc_authentication_init"),
    path("oidc/callback/", oidc.oidc_callback, name="oidc_authentication_callback"),
    path("inspect/", include("inspections.urls")),
    path("overview/", include("analytics.urls")),
    path("models/", include("deployments.urls")),
    path("models/", include("deployments.urls_models")),
    path("rollout/", include("deployments.urls_rollout")),
    path("rollout/", include("analytics.urls_gate")),
    path("audit/", include("deployments.urls_audit")),
    path("tokens/", include("inspections.urls_tokens")),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("readyz/workers", health.workers, name="readyz-workers"),
    path("metrics", health.metrics, name="metrics"),
]

admin.site.site_header = "ShadowLab administration"
admin.site.site_title = "ShadowLab"
