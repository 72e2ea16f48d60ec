"""The API's Swagger UI: vendored assets, settings passed as JSON, for ml_leads and admins."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from ninja.openapi.docs import DocsBase

from shadowlab import roles

if TYPE_CHECKING:
    from ninja import NinjaAPI

# The copy in static/vendor (and named in the template), taken from django-ninja 1.7.1.
SWAGGER_UI_VERSION = "5.31.0"


class VendoredSwagger(DocsBase):
    """Swagger UI from the project's own static files: no CDN, and no inline script."""

    settings: dict[str, Any] = {
        "layout": "BaseLayout",
        "deepLinking": True,
        # The default validator badge loads an image from validator.swagger.io.
        "validatorUrl": None,
    }

    def render_page(self, request: HttpRequest, api: NinjaAPI, **kwargs: Any) -> HttpResponse:
        """Render the page; its script reads the settings from a JSON element."""
        settings = {**self.settings, "url": self.get_openapi_url(api, kwargs)}
        context = {"api": api, "swagger_settings": settings}
        return render(request, "shadowlab/api_docs.html", context)


def docs_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Let signed-in ml_leads and admins through; send others to log in, or refuse them."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not roles.can_view_reports(request.user):
            raise PermissionDenied("the API description is for ml_leads and admins")
        return view(request, *args, **kwargs)

    return guarded
