from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "mail"
    verbose_name = "Mail"

    def ready(self) -> None:
        from . import receivers, signals  # noqa: F401  (topics for analysed mail; beat rows follow accounts)
