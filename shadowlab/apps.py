from django.apps import AppConfig


class ShadowLabConfig(AppConfig):
    name = "shadowlab"
    verbose_name = "ShadowLab"

    def ready(self) -> None:
        from axes.signals import user_locked_out

        from shadowlab.login_throttle import lockout_audit

        # Axes tells of a lockout only through this signal.
        user_locked_out.connect(lockout_audit, dispatch_uid="shadowlab.lockout_audit")
