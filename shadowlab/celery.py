"""The Celery application: configured from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shadowlab.settings")

app = Celery("shadowlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def _serve_worker_metrics(**_: object) -> None:
    """Expose this worker host's metrics on SHADOWLAB_WORKER_METRICS_PORT, if set."""
    port = os.environ.get("SHADOWLAB_WORKER_METRICS_PORT")
    if port:
        from prometheus_client import start_http_server

        from deployments.metrics import host_registry

        start_http_server(int(port), registry=host_registry())
