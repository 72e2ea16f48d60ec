"""A small OpenID Connect provider (django-oidc-provider) that the single sign-on tests run.

A Django project of its own, started in a subprocess with its own SQLite file: nothing
of ShadowLab's settings, database or code is in it.
"""
