"""Adjudication URLs, included by analytics.urls under /overview/ in the analytics namespace."""

from django.urls import path

from analytics import views_adjudication

urlpatterns = [
    path(
        "<slug:slug>/adjudicate/next/",
        views_adjudication.adjudicate_next,
        name="adjudicate_next",
    ),
    path(
        "<slug:slug>/adjudicate/<int:item_id>/",
        views_adjudication.adjudicate,
        name="adjudicate",
    ),
]
