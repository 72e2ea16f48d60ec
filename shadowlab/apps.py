from django.apps import AppConfig


class ShadowLabConfig(AppConfig):
    name = "shadowlab"
    verbose_name = "ShadowLab"
