"""Model version pages under /models/: /models/<name>:<version>/."""

from django.urls import path

from deployments import views_models
from shadowlab import converters  # noqa: F401  (registers the modelkey converter)

app_name = "models"

urlpatterns = [
    path("<modelkey:key>/", views_models.model_version_page, name="version"),
]
