from django.apps import AppConfig


class TagsConfig(AppConfig):
    name = "tags"
    verbose_name = "Tags"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (suggestions for newly analysed mail)
