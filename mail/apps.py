from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "mail"
    verbose_name = "Mail"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (keeps beat rows in step with accounts)
