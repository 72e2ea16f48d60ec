"""The API tokens page under /tokens/, for admins."""

from django.urls import path

from inspections import views_tokens

app_name = "tokens"

urlpatterns = [
    path("", views_tokens.api_tokens_page, name="list"),
    path("<int:token_id>/revoke", views_tokens.api_token_revoke, name="revoke"),
]
