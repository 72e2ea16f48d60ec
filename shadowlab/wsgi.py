"""WSGI entry point (gunicorn shadowlab.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shadowlab.settings")

application = get_wsgi_application()

# Models that decide items (canary, live) are loaded and warmed before the first request.
from deployments.live import live_preload  # noqa: E402

live_preload()
