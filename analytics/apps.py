from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Mounts the reports router on the project's NinjaAPI before its URLs are built.
        from analytics import api  # noqa: F401
