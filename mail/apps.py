from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "mail"
    verbose_name = "Mail"

    def ready(self) -> None:
        from . import (
            oauth_receivers,  # noqa: F401  (a removed account's OAuth consent is revoked)
            retention,
            schedule_receivers,  # noqa: F401  (beat rows follow accounts)
            tasks,  # noqa: F401  (a changed outbox queues its write-back)
        )

        retention.register()  # sync runs and the settled outbox (core/retention.py prunes them)
