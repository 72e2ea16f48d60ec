from django.apps import AppConfig


class ShadowLabConfig(AppConfig):
    name = "shadowlab"
    verbose_name = "ShadowLab"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        from shadowlab import role_audit  # noqa: F401  (connects the role-change audit)
        from shadowlab.login_throttle import lockout_audit
        from shadowlab.throttling import rate_parse

        # A rate the API could not read would fail every request: refuse to start instead.
        try:
            rate_parse(settings.SHADOWLAB_API_RATE)
        except ValueError as exc:
            raise ImproperlyConfigured(f"SHADOWLAB_API_RATE: {exc}") from exc

        # Axes tells of a lockout only through this signal.
        user_locked_out.connect(lockout_audit, dispatch_uid="shadowlab.lockout_audit")
