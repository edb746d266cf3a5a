from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Calendar invitations received by mail: the event card, answers by iMIP REPLY, cancellations."""

    name = "events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - connects to mail.signals
