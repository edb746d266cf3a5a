from django.apps import AppConfig


class DigestConfig(AppConfig):
    """The optional daily mail that tells a user what needs them, at the hour they chose."""

    name = "digest"
    default_auto_field = "django.db.models.BigAutoField"
