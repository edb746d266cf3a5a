from django.apps import AppConfig


class LegacyConfig(AppConfig):
    """The import of the legacy application's data; hooked into login and pages by a signal and a
    registry (legacy/receivers.py), imported by no other app."""

    name = "legacy"
    verbose_name = "Legacy import"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (first-login conversion; "waiting for first login" on pages)
