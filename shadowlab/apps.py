from django.apps import AppConfig


class ShadowLabConfig(AppConfig):
    name = "shadowlab"
    verbose_name = "ShadowLab"

    def ready(self) -> None:
        from shadowlab import role_audit  # noqa: F401  (connects the role-change audit)
