from django.apps import AppConfig


class TagsConfig(AppConfig):
    name = "tags"
    verbose_name = "Tags"

    def ready(self) -> None:
        from mail import signals

        from . import keywords

        # Keywords other mail clients set, read back as tags (tags/keywords.py): on messages the sync
        # found changed, and on new mail that arrives with keywords.
        signals.keywords_changed.connect(keywords.keywords_changed, dispatch_uid="tags.keywords_changed")
        signals.messages_stored.connect(keywords.messages_stored, dispatch_uid="tags.keywords_stored")
