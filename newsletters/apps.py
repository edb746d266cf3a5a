from django.apps import AppConfig


class NewslettersConfig(AppConfig):
    """The senders of list mail, grouped by volume and read rate, and one-click unsubscribe from them."""

    name = "newsletters"
    default_auto_field = "django.db.models.BigAutoField"
