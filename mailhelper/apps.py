from django.apps import AppConfig


class MailhelperConfig(AppConfig):
    name = "mailhelper"
    verbose_name = "Mailhelper platform"
