"""WSGI entry point (gunicorn shadowlab.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shadowlab.settings")

application = get_wsgi_application()
