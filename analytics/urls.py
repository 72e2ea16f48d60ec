from django.urls import path

from analytics import urls_adjudication, views, views_deferral

app_name = "analytics"

urlpatterns = [
    *urls_adjudication.urlpatterns,
    path("", views.overview, name="overview"),
    path("<slug:slug>/export.csv", views.export_csv, name="export"),
    path(
        "<slug:slug>/deferral-threshold",
        views_deferral.deferral_threshold_post,
        name="deferral_threshold",
    ),
    path("<slug:slug>/<slug:kind>/", views.report_page, name="report"),
]
