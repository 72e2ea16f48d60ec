"""URL converters shared by the apps' URL modules (registered once, on first import)."""

from django.urls import register_converter


class ModelKeyConverter:
    """A model version key, "name:version" (names have no ':').

    The registry lets either part hold a '/', so the key may span path segments; the
    text around it in each pattern still decides where it ends.
    """

    regex = r"[^:]+:.+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ModelKeyConverter, "modelkey")
