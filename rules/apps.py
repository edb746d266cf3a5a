from django.apps import AppConfig


class RulesConfig(AppConfig):
    name = "rules"
    verbose_name = "Rules"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (rules run on newly analysed mail)
